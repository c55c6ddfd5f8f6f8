"""Shared fixtures built from tests/srtest.py helpers."""

from __future__ import annotations

import onnx
import pytest
from srtest import exported, make_plan, tiny_edsr

from srdeploy.models.base import SRModel
from srdeploy.passes.graph_info import GraphInfo


@pytest.fixture(scope="session")
def tiny_model() -> SRModel:
    return tiny_edsr()


@pytest.fixture(scope="session")
def tiny_export(tiny_model: SRModel, tmp_path_factory: pytest.TempPathFactory) -> tuple[onnx.ModelProto, GraphInfo]:
    return exported(tiny_model, tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="session")
def tiny_plan_w8a8(tiny_model, tiny_export):
    return make_plan(tiny_model, tiny_export, weight_bits=8, act_bits=8, method="mse")
