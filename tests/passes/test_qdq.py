"""The QDQ rewrite: placement per profile, numerics against the simulation, idempotence, INT4, Clip."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort
import pytest
import torch
from srtest import exported, make_plan, params, tiny_edsr

from srdeploy.passes.qdq import QDQOptions, insert_qdq
from srdeploy.passes.rewrite import rewrite
from srdeploy.passes.weights import set_float_weights
from srdeploy.quant.plan import Emission
from srdeploy.quant.simulate import simulate


def run(model: onnx.ModelProto, x: np.ndarray, optimize: bool = False) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def sim(model, plan, profile: str, x: np.ndarray, tier: int = 0) -> np.ndarray:
    with torch.no_grad():
        return simulate(model, plan, profile, tier)(torch.from_numpy(x)).numpy()


def emit(model, fp32, plan, profile: str, tier: int = 0, fp16: bool | None = None) -> onnx.ModelProto:
    return rewrite(fp32, plan, profile, tier, params(model, plan), fp16=fp16)[0]


X = np.random.default_rng(3).random((1, 3, 12, 17)).astype(np.float32)


def ops(model: onnx.ModelProto) -> Counter[str]:
    return Counter(n.op_type for n in model.graph.node)


def _consumers(model: onnx.ModelProto, tensor: str) -> list[str]:
    return [n.name for n in model.graph.node if tensor in n.input]


def test_trt_placement(tiny_model, tiny_export, tiny_plan_w8a8) -> None:
    fp32, _ = tiny_export
    model = emit(tiny_model, fp32, tiny_plan_w8a8, "trt")
    nodes = {n.name: n for n in model.graph.node}
    producers = {o: n for n in model.graph.node for o in n.output}
    quantized = [x.weight for x in tiny_plan_w8a8.quantized_layers()]
    for conv in (n for n in model.graph.node if n.op_type == "Conv"):
        w_src = producers.get(conv.input[1])
        if w_src is not None and w_src.op_type == "DequantizeLinear":
            # every quantized conv: DQ on weight (per-channel axis 0) and DQ on the activation
            assert {a.name: a.i for a in w_src.attribute}["axis"] == 0
            assert producers[conv.input[0]].op_type == "DequantizeLinear"
            # no Q on conv outputs
            assert all(nodes[c].op_type != "QuantizeLinear" for c in _consumers(model, conv.output[0]))
    dq_weight_convs = [
        n
        for n in model.graph.node
        if n.op_type == "Conv" and n.input[1] in producers and producers[n.input[1]].op_type == "DequantizeLinear"
    ]
    assert len(dq_weight_convs) == len(quantized)
    # residual adds: skip input (1) dequantized, branch (0) straight from the conv
    for add in (n for n in model.graph.node if n.op_type == "Add" and n.name.endswith(".add:Add")):
        assert producers[add.input[1]].op_type == "DequantizeLinear"
        assert producers[add.input[0]].op_type == "Conv"
    # nothing around DepthToSpace, zero points 0, FP16 float regions, fp32 interface
    for d2s in (n for n in model.graph.node if n.op_type == "DepthToSpace"):
        assert producers[d2s.input[0]].op_type != "DequantizeLinear"
        assert all(nodes[c].op_type != "QuantizeLinear" for c in _consumers(model, d2s.output[0]))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            assert not inits[n.input[2]].any()
            assert inits[n.input[1]].dtype == np.float16
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_openvino_stream_q_is_shared_by_the_next_conv_and_the_skip(tiny_model, tiny_export) -> None:
    """OpenVINO fuses a FakeQuantize into the conv + Add producing the residual stream only when the stream's
    one Q/DQ serves both consumers: the block Adds' skip and the next conv read the same DequantizeLinear; the
    network-wide skip (quant.residual_skips: block) reads the float stream."""
    from srtest import plan_for, recipe

    fp32, graph = tiny_export
    plan = plan_for(
        tiny_model, fp32, graph, recipe(dict(weight_bits=8, act_bits=8), export=dict(profiles=["openvino"]))
    )
    model = emit(tiny_model, fp32, plan, "openvino")
    producers = {o: n for n in model.graph.node for o in n.output}
    adds = [n for n in model.graph.node if n.op_type == "Add" and n.name.endswith(".add:Add")]
    assert adds
    for add in adds:
        skip = producers[add.input[1]]
        assert skip.op_type == "DequantizeLinear"
        assert "Conv" in [n.op_type for n in model.graph.node if skip.output[0] in n.input]
    body_add = next(n for n in model.graph.node if n.name.startswith("body_add"))
    assert all(producers[i].op_type != "DequantizeLinear" for i in body_add.input)


def test_ort_placement_and_fusion(tiny_model, tiny_export, tiny_plan_w8a8, tmp_path: Path) -> None:
    from srdeploy.backends.ort import fusion_report

    fp32, _ = tiny_export
    model, results = rewrite(fp32, tiny_plan_w8a8, "ort", 0, params(tiny_model, tiny_plan_w8a8))
    qdq = next(r for r in results if r.name.startswith("insert_qdq"))
    assert qdq.changes["relu_folded_into_quantizer"] == 2  # one per residual block
    path = tmp_path / "ort.onnx"
    onnx.save(model, str(path))
    report = fusion_report(path)
    # the plan's convs; the identity conv that starts the integer stream in NHWC (passes/nhwc_entry.py) runs
    # fused too but is not counted as one of them
    assert report.quantized_convs == len(tiny_plan_w8a8.quantized_layers())
    assert report.optimized_ops["QLinearConv"] == report.quantized_convs + 1
    assert report.fused_integer_convs == report.quantized_convs
    assert report.optimized_ops.get("QLinearAdd", 0) >= 2


@pytest.mark.parametrize("profile", ["trt", "ort"])
@pytest.mark.parametrize(("wb", "ab"), [(8, 8), (4, 4), (8, 6), (3, 5), (2, 2)])
def test_deployment_matches_simulation(tmp_path: Path, profile: str, wb: int, ab: int) -> None:
    model = tiny_edsr()
    fp32, graph = exported(model, tmp_path)
    plan = make_plan(model, (fp32, graph), weight_bits=wb, act_bits=ab, method="mse")
    ref = sim(model, plan, profile, X)
    # Unfused execution of the QDQ graph (INT4 weights too, where the plan stores them) computes exactly
    # what the plan says.
    np.testing.assert_allclose(run(emit(model, fp32, plan, profile, fp16=False), X), ref, atol=2e-5)
    if profile == "trt":
        half = emit(model, fp32, plan, profile)
        step = max(float(s.scale) for s in plan.tier(0).sites("trt").values())
        assert np.abs(run(half, X) - ref).max() < 0.05 + step  # fp16 rounding can flip a level


def test_rewrite_changes_nothing_the_second_time(tiny_model, tiny_export, tiny_plan_w8a8) -> None:
    fp32, _ = tiny_export
    for profile in ("trt", "ort"):
        graph = gs.import_onnx(fp32)
        assert set_float_weights(graph, params(tiny_model, tiny_plan_w8a8)).summary()["name"] == "set_float_weights"
        first = insert_qdq(graph, tiny_plan_w8a8, QDQOptions(profile, 0))
        before = gs.export_onnx(graph).SerializeToString()
        second = insert_qdq(graph, tiny_plan_w8a8, QDQOptions(profile, 0))
        again = set_float_weights(graph, params(tiny_model, tiny_plan_w8a8))
        assert first.changed and not second.changed and not again.changed
        assert {r for _, r in second.skipped} >= {"already quantized"}
        assert gs.export_onnx(graph).SerializeToString() == before


def test_rewrite_is_deterministic(tiny_model, tiny_export, tiny_plan_w8a8) -> None:
    fp32, _ = tiny_export
    a = emit(tiny_model, fp32, tiny_plan_w8a8, "trt")
    b = emit(tiny_model, fp32, tiny_plan_w8a8, "trt")
    assert a.SerializeToString() == b.SerializeToString()


def test_int4_weights_make_smaller_files(tmp_path: Path) -> None:
    model = tiny_edsr(feats=16)
    fp32, graph = exported(model, tmp_path)
    plan = make_plan(model, (fp32, graph), weight_bits=4, act_bits=4, method="mse")
    assert plan.emission["ort"].int4_weights and not plan.emission["trt"].int4_weights
    int8_plan = replace(plan, emission={**plan.emission, "ort": Emission(opset=19)})
    int8 = emit(model, fp32, int8_plan, "ort")
    int4, results = rewrite(fp32, plan, "ort", 0, params(model, plan))
    assert results[-1].changes["int4_initializer"] > 0
    assert int4.opset_import[0].version >= 21
    assert len(int4.SerializeToString()) < len(int8.SerializeToString())
    np.testing.assert_allclose(run(int4, X), run(int8, X), atol=1e-6)


def test_sub8bit_sites_get_a_clip(tmp_path: Path) -> None:
    model = tiny_edsr()
    fp32, graph = exported(model, tmp_path)
    plan = make_plan(model, (fp32, graph), weight_bits=8, act_bits=4, method="minmax")
    assert ops(emit(model, fp32, plan, "trt"))["Clip"] >= len(plan.quantized_layers())
    plan8 = make_plan(model, (fp32, graph), weight_bits=8, act_bits=8, method="minmax")
    assert ops(emit(model, fp32, plan8, "trt"))["Clip"] == 0
