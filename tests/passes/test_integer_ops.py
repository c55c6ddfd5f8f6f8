"""passes/integer_ops.py: pixel shuffle on integers and one-slope PReLU as LeakyRelu in the ort graph,
computing exactly what the graph without the rewrites computes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest
from srtest import exported, ort_fused, params, plan_for, recipe, tiny_srresnet_bn

import srdeploy.profiles as profiles
from srdeploy.models.deploy_form import to_deploy_form
from srdeploy.passes.rewrite import rewrite

QUANT = dict(weight_bits=8, act_bits=8, method="mse", quantize_roles=["body", "upsampler", "tail"])
X = np.random.default_rng(2).random((1, 3, 13, 10)).astype(np.float32)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    model = to_deploy_form(tiny_srresnet_bn())
    fp32, graph = exported(model, tmp_path_factory.mktemp("integer_ops"))
    return model, fp32, plan_for(model, fp32, graph, recipe(QUANT))


def _emit(built, profile: str = "ort") -> onnx.ModelProto:
    model, fp32, plan = built
    return rewrite(fp32, plan, profile, 0, params(model, plan))[0]


def _producer_op(model: onnx.ModelProto, tensor: str) -> str:
    return next(n.op_type for n in model.graph.node if tensor in n.output)


def test_pixel_shuffle_reads_integers_and_prelu_is_leaky_relu(built, monkeypatch) -> None:
    graph = _emit(built)
    ops = [n.op_type for n in graph.graph.node]
    assert "PRelu" not in ops and "LeakyRelu" in ops
    shuffles = [n for n in graph.graph.node if n.op_type == "DepthToSpace"]
    assert shuffles and all(_producer_op(graph, n.input[0]) != "DequantizeLinear" for n in shuffles)
    monkeypatch.setitem(profiles.PROFILES, "ort", replace(profiles.PROFILES["ort"], integer_movement=False))
    plain = _emit(built)
    assert "PRelu" in [n.op_type for n in plain.graph.node]
    assert any(
        _producer_op(plain, n.input[0]) == "DequantizeLinear" for n in plain.graph.node if n.op_type == "DepthToSpace"
    )
    np.testing.assert_array_equal(ort_fused(graph, X), ort_fused(plain, X))


def test_trt_graph_keeps_prelu(built) -> None:
    assert "PRelu" in [n.op_type for n in _emit(built, "trt").graph.node]
