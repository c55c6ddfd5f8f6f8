"""The ort_u8u8 profile: 8-bit weights stored as uint8 (q + 128, zero point 128) for ONNX Runtime's u8 x u8
kernels; the same grid as int8 8-bit weights, so the same function, fused into integer convolutions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from srtest import exported, ort_fused, params, plan_for, recipe, simulated, tiny_edsr

import srdeploy.profiles as profiles
from srdeploy.passes.rewrite import rewrite

QUANT = dict(weight_bits=8, act_bits=8, method="mse", quantize_roles=["body", "upsampler", "tail"])
X = np.random.default_rng(11).random((1, 3, 13, 10)).astype(np.float32)


INT8_8BIT = "ort8"  # the ort layout with 8-bit int8 weights: what ort_u8u8 holds, shifted (this module only)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(profiles.PROFILES, INT8_8BIT, replace(profiles.PROFILES["ort"], name=INT8_8BIT, max_weight_bits=8))
        model = tiny_edsr(blocks=2, feats=16)
        fp32, graph = exported(model, tmp_path_factory.mktemp("u8u8"))
        r = recipe(QUANT, export={"profiles": ["ort", INT8_8BIT, "ort_u8u8"]})
        yield model, fp32, plan_for(model, fp32, graph, r)


def _emit(built, profile: str) -> onnx.ModelProto:
    model, fp32, plan = built
    return rewrite(fp32, plan, profile, 0, params(model, plan))[0]


def _weights(graph: onnx.ModelProto, plan) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Quantized conv weight name -> (stored integers, zero points)."""
    inits = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer}
    return {w: (inits[w], inits[f"{w}.zero_point"]) for w in (x.weight for x in plan.quantized_layers())}


def test_uint8_weights_are_the_int8_grid_shifted_by_128(built) -> None:
    _, _, plan = built
    u8 = _weights(_emit(built, "ort_u8u8"), plan)
    s8 = _weights(_emit(built, INT8_8BIT), plan)
    assert u8.keys() == s8.keys() and u8
    for w, (data, zp) in u8.items():
        assert data.dtype == np.uint8 and zp.dtype == np.uint8 and np.all(zp == 128), w
        ref, ref_zp = s8[w]
        assert ref.dtype == np.int8 and np.all(ref_zp == 0)
        np.testing.assert_array_equal(data.astype(np.int16) - 128, ref.astype(np.int16), err_msg=w)
    # the full 8-bit grid is used (ort narrows to 7 bits: |q| <= 63)
    assert max(int(np.abs(d.astype(np.int16) - 128).max()) for d, _ in u8.values()) > 63


def test_padded_output_filters_are_zero_on_the_uint8_grid(built) -> None:
    _, _, plan = built
    graph = _emit(built, "ort_u8u8")
    out_conv = [x.weight for x in plan.quantized_layers()][-1]
    data, zp = _weights(graph, plan)[out_conv]
    real = next(x for x in plan.layers if x.weight == out_conv).out_channels
    assert data.shape[0] == 16 > real  # padded to 16 filters for the integer kernel
    assert np.all(data[real:] == 128) and np.all(zp[real:] == 128)  # q - zero point = 0


def test_u8u8_graph_runs_fused_and_computes_what_the_8bit_int8_graph_does(built, tmp_path) -> None:
    import onnxruntime as ort

    model, _, plan = built
    graph = _emit(built, "ort_u8u8")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    sess = ort.InferenceSession(graph.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    y = sess.run(None, {"input": X})[0]
    fused = [n for n in onnx.load(opts.optimized_model_filepath).graph.node if n.op_type == "QLinearConv"]
    # every quantized conv runs as an integer kernel, and so does the identity entry conv (passes/nhwc_entry.py)
    assert len(fused) == len(plan.quantized_layers()) + 1
    np.testing.assert_allclose(y, ort_fused(_emit(built, INT8_8BIT), X), atol=1e-6)
    s = simulated(model, plan, "ort_u8u8", 0, X)
    psnr = 10 * np.log10(1.0 / float(np.mean((y - s) ** 2)))
    assert psnr > 40, psnr
