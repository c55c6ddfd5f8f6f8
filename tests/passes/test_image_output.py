"""The ort profile's network output: an output Q on the 8-bit image grid, the narrow output conv padded to
16 filters for ONNX Runtime's integer kernel (passes/pad_channels.py), the same function as unpadded."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from srtest import exported, ort_fused, params, plan_for, recipe, simulated, tiny_edsr

import srdeploy.profiles as profiles
from srdeploy.passes.pad_channels import pad_output_channels
from srdeploy.passes.rewrite import rewrite

QUANT = dict(weight_bits=8, act_bits=8, method="mse", quantize_roles=["body", "upsampler", "tail"])
X = np.random.default_rng(5).random((1, 3, 11, 14)).astype(np.float32)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    model = tiny_edsr(blocks=2, feats=16)
    fp32, graph = exported(model, tmp_path_factory.mktemp("image_output"))
    plan = plan_for(model, fp32, graph, recipe(QUANT))
    return model, fp32, plan


def _emit(built, profile: str = "ort") -> onnx.ModelProto:
    model, fp32, plan = built
    return rewrite(fp32, plan, profile, 0, params(model, plan))[0]


def _output_conv(built) -> str:
    _, _, plan = built
    return [x.weight for x in plan.quantized_layers()][-1]


def test_the_output_conv_is_quantized_on_the_image_grid(built) -> None:
    """EDSR ends in output conv -> add_mean (x / 255 + mean): the image's output Q is placed after add_mean on
    the 8-bit grid, and the emission folds add_mean into the integer output conv (passes/output_affine.py)."""
    model, _, plan = built
    site = "add_mean.weight@output"
    spec = plan.tier(0).sites("ort")[site]
    r = plan.ranges["ort"][site]
    assert (r.lo, r.hi) == (0.0, 1.0) and f"{_output_conv(built)}@output" not in plan.tier(0).sites("ort")
    scale = float(spec.scale)  # 1/255 at fp16 precision (every grid's scale is fp16-representable)
    assert spec.bits == 8 and abs(scale * 255 - 1) < 2e-5 and int(spec.zero_point) == 0
    assert site not in plan.tier(0).sites("trt")  # TensorRT keeps a float output
    graph = _emit(built)
    assert graph.graph.node[-1].op_type == "DequantizeLinear" and graph.graph.node[-1].output[0] == "output"
    assert not any(n.op_type == "Conv" and "add_mean" in n.name for n in graph.graph.node)  # folded
    assert any(n.op_type == "Conv" and "add_mean" in n.name for n in _emit(built, "trt").graph.node)
    y = ort_fused(graph, X)
    assert y.min() >= 0.0 and y.max() <= 1.0 and len(np.unique(y)) > 20
    q = np.round(y / scale)
    np.testing.assert_allclose(y / scale, q, atol=1e-3)  # on the grid
    np.testing.assert_array_equal(np.round(np.clip(y, 0, 1) * 255), q)  # saving as 8-bit gives the levels back
    s = simulated(model, plan, "ort", 0, X)
    np.testing.assert_allclose(s / scale, np.round(s / scale), atol=1e-3)  # the simulation models it too
    diff = np.abs(np.round(s / scale) - q)  # integer requantization vs the float simulation: a level at most
    assert diff.max() <= 1 and diff.mean() < 0.05


def test_narrow_output_conv_is_padded_and_sliced_with_the_same_result(built, monkeypatch) -> None:
    padded = _emit(built)
    slices = [n for n in padded.graph.node if n.op_type == "Slice" and n.name.endswith(":SliceChannels")]
    assert len(slices) == 1 and padded.graph.output[0].name == "output"
    weight = _output_conv(built)  # the integer weight keeps the plan's name, 3 filters + 13 zero filters
    init = next(i for i in padded.graph.initializer if i.name == weight)
    assert init.dims[0] == 16 and init.data_type == onnx.TensorProto.INT8
    body = [i for i in padded.graph.initializer if i.name.startswith("body.") and i.name.endswith(".weight")]
    assert body and all(i.dims[0] == 16 for i in body)  # other convs untouched (16 features in this model)
    monkeypatch.setitem(profiles.PROFILES, "ort", replace(profiles.PROFILES["ort"], pad_output_channels=0))
    plain = _emit(built)
    assert not any(n.op_type == "Slice" for n in plain.graph.node)
    np.testing.assert_array_equal(ort_fused(padded, X), ort_fused(plain, X))


def test_padding_changes_nothing_when_run_again(built) -> None:
    graph = gs.import_onnx(_emit(built))
    again = pad_output_channels(graph, 16)
    assert not again.changed and sum(n.op == "Slice" for n in graph.nodes) == 1


def test_profiles_without_the_rules_emit_no_padding(built) -> None:
    for profile in ("trt",):
        g = _emit(built, profile)
        assert not any(n.op_type == "Slice" for n in g.graph.node), profile
