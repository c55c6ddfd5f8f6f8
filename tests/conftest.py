"""Shared fixtures built from tests/srtest.py helpers."""

from __future__ import annotations

import shutil
from pathlib import Path

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


@pytest.fixture(scope="session")
def cli_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CLI battery's workspace (checkpoint, images, recipe); tests work on copies (``ws``)."""
    from clitest import make_workspace

    return make_workspace(tmp_path_factory.mktemp("cli_template"))


@pytest.fixture(scope="session")
def good_build(cli_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real, validated build of the battery recipe, shared: copy it (``build_copy``) to change it."""
    from clitest import run_cli

    out = tmp_path_factory.mktemp("good") / "tiny"
    res = run_cli("build", "--recipe", "recipe.yaml", "--out", str(out), cwd=cli_template)
    assert res.code == 0, res.err
    return out


@pytest.fixture
def ws(cli_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(cli_template, tmp_path / "ws"))


@pytest.fixture
def build_copy(good_build: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(good_build, tmp_path / "builds" / "tiny"))
