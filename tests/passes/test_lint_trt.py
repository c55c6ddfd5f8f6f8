"""lint_trt: hand-made graphs that each break exactly one rule, and real trt rewrites that pass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from srtest import exported, make_plan, params, plan_for, recipe, tiny_edsr

from srdeploy.passes.lint_trt import RULES, lint_trt, lint_trt_main
from srdeploy.passes.rewrite import rewrite
from srdeploy.sparsity.nm import nm_mask

F16, I8 = TensorProto.FLOAT16, TensorProto.INT8


def _t(name: str, dtype: int, values: np.ndarray | list, dims: list[int] | None = None) -> TensorProto:
    arr = np.asarray(values)
    return helper.make_tensor(name, dtype, list(arr.shape) if dims is None else dims, arr.ravel().tolist())


def graph(**o) -> onnx.ModelProto:
    """A clean trt-style graph: Cast -> float Conv0 -> Q/DQ (input, skip) -> quantized Conv1 -> Add -> Cast.

    Each keyword changes one thing so a test breaks exactly one rule."""
    if "matmul_int4_opset" in o:
        return matmul_int4(o["matmul_int4_opset"])
    rng = np.random.default_rng(0)
    k = 8
    w1 = o.get("w1", rng.integers(-20, 20, (k, k, 3, 3)))
    w_type, zp_type = o.get("w_type", I8), o.get("zp_type", I8)
    act_scale = o.get("act_scale", [0.05])
    inits = [
        _t("w0", F16, rng.normal(0, 0.1, (k, 3, 3, 3))),
        _t("w1", w_type, w1),
        _t("w1.scale", F16, o.get("w_scale", np.full(k, 0.01))),
        _t("w1.zp", w_type, o.get("w_zp", np.zeros(k, int))),
        _t("a.scale", F16, act_scale),
        _t("a.zp", zp_type, np.zeros(len(act_scale), int)),
        _t("s.scale", F16, [0.04]),
        _t("s.zp", I8, [0]),
    ]
    a_scale = "a.scale.id" if o.get("runtime_scale") else "a.scale"
    conv0_out = "t0t" if o.get("transpose") else "t0"
    act_qdq = ["a.q", "a.dq", "a.dq"]
    zps = [] if o.get("no_zp") else ["a.zp"]
    axis = {"axis": 1} if len(act_scale) > 1 else {}
    nodes = [
        helper.make_node("Cast", ["input"], ["x16"], "input:Cast", to=F16),
        helper.make_node("Conv", ["x16", "w0"], ["t0"], "conv0:Conv", pads=[1] * 4),
        helper.make_node("QuantizeLinear", [conv0_out, a_scale, *zps], [act_qdq[0]], "a:QuantizeLinear", **axis),
        helper.make_node("DequantizeLinear", [act_qdq[0], a_scale, *zps], [act_qdq[1]], "a:DequantizeLinear", **axis),
        helper.make_node(
            "DequantizeLinear", ["w1", "w1.scale", "w1.zp"], ["w1.dq"], "w1:DequantizeLinear", axis=o.get("w_axis", 0)
        ),
        helper.make_node(o.get("conv1", "Conv"), [act_qdq[2], "w1.dq"], ["t1"], "conv1:Conv", pads=[1] * 4),
    ]
    if o.get("runtime_scale"):
        nodes.insert(1, helper.make_node("Identity", ["a.scale"], ["a.scale.id"], "scale:Identity"))
    if o.get("transpose"):
        nodes.insert(2, helper.make_node("Transpose", ["t0"], ["t0t"], "t0:Transpose", perm=[0, 1, 2, 3]))
    branch = "t1"
    if o.get("branch_qdq"):  # conv1 -> Relu -> Q -> DQ -> Add: both Add inputs dequantized
        nodes += [
            helper.make_node("Relu", ["t1"], ["r1"], "relu:Relu"),
            helper.make_node("QuantizeLinear", ["r1", "s.scale", "s.zp"], ["r1.q"], "r1:QuantizeLinear"),
            helper.make_node("DequantizeLinear", ["r1.q", "s.scale", "s.zp"], ["r1.dq"], "r1:DequantizeLinear"),
        ]
        branch = "r1.dq"
    if o.get("conv_out_qdq"):  # conv1 -> Q -> DQ -> Relu -> Add
        nodes += [
            helper.make_node("QuantizeLinear", ["t1", "s.scale", "s.zp"], ["t1.q"], "t1:QuantizeLinear"),
            helper.make_node("DequantizeLinear", ["t1.q", "s.scale", "s.zp"], ["t1.dq"], "t1:DequantizeLinear"),
            helper.make_node("Relu", ["t1.dq"], ["r1"], "relu:Relu"),
        ]
        branch = "r1"
    skip = "t0"
    if not o.get("float_skip"):
        nodes += [
            helper.make_node("QuantizeLinear", [conv0_out, "s.scale", "s.zp"], ["s.q"], "s:QuantizeLinear"),
            helper.make_node("DequantizeLinear", ["s.q", "s.scale", "s.zp"], ["s.dq"], "s:DequantizeLinear"),
        ]
        skip = "s.dq"
    nodes.append(helper.make_node("Add", [branch, skip], ["t2"], "block:Add"))
    last = "t2"
    if o.get("fp32_island"):
        nodes += [
            helper.make_node("Cast", ["t2"], ["t2f"], "up:Cast", to=TensorProto.FLOAT),
            helper.make_node("Relu", ["t2f"], ["t3f"], "island:Relu"),
            helper.make_node("Cast", ["t3f"], ["t3"], "down:Cast", to=F16),
        ]
        last = "t3"
    nodes.append(helper.make_node("Cast", [last], ["output"], "output:Cast", to=TensorProto.FLOAT))
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)]
    if o.get("prequantized"):
        nodes.append(helper.make_node("ConvInteger", ["a.q", "w1"], ["ci"], "legacy:ConvInteger"))
        outputs.append(helper.make_tensor_value_info("ci", TensorProto.INT32, None))
    shape = o.get("input_shape", ["N", 3, "H", "W"])
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)], outputs, inits
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", o.get("opset", 19))])
    for key, value in o.get("meta", {}).items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    return model


def matmul_int4(opset: int) -> onnx.ModelProto:
    """Weight-only INT4 MatMul (what TensorRT allows 4-bit types for); needs opset 21."""
    nodes = [
        helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wdq"], "w:DequantizeLinear"),
        helper.make_node("MatMul", ["x", "wdq"], ["y"], "mm:MatMul"),
    ]
    inits = [_t("w", TensorProto.INT4, np.ones((8, 4), int)), _t("ws", F16, 0.1, []), _t("wz", TensorProto.INT4, 0, [])]
    inputs = [helper.make_tensor_value_info("x", F16, ["N", 8])]
    outputs = [helper.make_tensor_value_info("y", F16, None)]
    g = helper.make_graph(nodes, "mm", inputs, outputs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def test_clean_handmade_graph_has_no_findings() -> None:
    report = lint_trt(graph())
    assert report.findings == () and report.ok
    assert lint_trt(graph(conv1="ConvTranspose", w_axis=1)).findings == ()


BREAKS = [
    ("qdq-format", "error", dict(prequantized=True)),
    ("qdq-dtype", "error", dict(zp_type=TensorProto.UINT8)),
    ("qdq-dtype", "error", dict(no_zp=True)),
    ("qdq-int4-conv", "error", dict(w_type=TensorProto.INT4, w1=np.zeros((8, 8, 3, 3), int) + 3, opset=21)),
    ("zero-point", "error", dict(w_zp=np.r_[1, np.zeros(7, int)])),
    ("scale-constant", "error", dict(runtime_scale=True)),
    ("scale-value", "error", dict(w_scale=np.r_[0.0, np.full(7, 0.01)])),
    ("scale-value", "error", dict(w_scale=np.r_[-0.01, np.full(7, 0.01)])),
    ("scale-value", "error", dict(act_scale=[np.inf])),
    ("activation-per-tensor", "error", dict(act_scale=np.full(8, 0.05))),
    ("weight-per-channel", "error", dict(w_axis=1)),
    ("weight-per-channel", "error", dict(conv1="ConvTranspose", w_axis=0)),
    ("weight-per-channel", "warning", dict(w_scale=[0.01], w_zp=[0])),
    ("opset", "error", dict(matmul_int4_opset=19)),
    ("qdq-data-movement", "warning", dict(transpose=True)),
    ("conv-output-quantized", "warning", dict(conv_out_qdq=True)),
    ("residual-add", "warning", dict(float_skip=True)),
    ("residual-add", "warning", dict(branch_qdq=True)),
    ("fp16-region", "warning", dict(fp32_island=True)),
    ("static-hw", "warning", dict(input_shape=[1, 3, 16, 16])),
    ("sparse-2of4", "warning", dict(meta={"srdeploy.sparse_2of4_weights": '["w1"]'})),
    ("sparse-2of4", "warning", dict(meta={"srdeploy.sparse_2of4_weights": '["no_such_weight"]'})),
]


@pytest.mark.parametrize(("rule", "severity", "change"), BREAKS, ids=[f"{b[0]}-{i}" for i, b in enumerate(BREAKS)])
def test_each_rule_is_caught_alone(rule: str, severity: str, change: dict) -> None:
    report = lint_trt(graph(**change))
    assert report.rules() == {rule}, report.findings
    assert {f.severity for f in report.findings} == {severity}
    assert report.ok == (severity == "warning")
    assert all(f.node for f in report.findings)


RULE_IDS = {
    "qdq-format", "qdq-dtype", "qdq-int4-conv", "zero-point", "scale-constant", "scale-value",
    "activation-per-tensor", "weight-per-channel", "opset", "qdq-data-movement", "conv-output-quantized",
    "residual-add", "fp16-region", "static-hw", "sparse-2of4",
}  # fmt: skip


def test_every_rule_has_a_breaking_graph() -> None:
    assert len(RULES) == 12  # rule functions; some yield two rule ids
    assert {rule for rule, _, _ in BREAKS} == RULE_IDS
    assert {f.rule for _, _, change in BREAKS for f in lint_trt(graph(**change)).findings} == RULE_IDS


def test_int4_weights_are_fine_on_matmul() -> None:
    report = lint_trt(matmul_int4(opset=21))
    assert report.findings == () and report.ok


def test_sparse_metadata_accepts_a_real_2of4_weight() -> None:
    w = np.random.default_rng(1).integers(1, 20, (16, 16, 3, 3)) * nm_mask(np.ones((16, 16, 3, 3)), 2, 4)
    assert lint_trt(graph()).findings == ()  # baseline
    model = graph(meta={"srdeploy.sparse_2of4_weights": '["w"]'})
    model.graph.initializer.append(numpy_helper.from_array(w.astype(np.int8), "w"))
    assert lint_trt(model).findings == ()


# --------------------------------------------------------------------- real rewrites of a tiny EDSR
@pytest.fixture(scope="module")
def tiny16(tmp_path_factory: pytest.TempPathFactory):
    model = tiny_edsr(feats=16)
    fp32, graph_info = exported(model, tmp_path_factory.mktemp("lint"))
    return model, fp32, graph_info


def emit(model, fp32, plan, profile: str) -> onnx.ModelProto:
    return rewrite(fp32, plan, profile, 0, params(model, plan))[0]


def test_real_trt_graph_is_clean(tiny16) -> None:
    model, fp32, g = tiny16
    plan = make_plan(model, (fp32, g), weight_bits=8, act_bits=8, method="mse")
    trt = emit(model, fp32, plan, "trt")
    report = lint_trt(trt)
    assert report.errors == () and report.warnings == ()
    # the network-wide skip is float on purpose (quant.residual_skips: block): info, not a warning
    assert [(f.rule, f.node, f.severity) for f in report.findings] == [("residual-add", "body_add:Add", "info")]


def test_real_trt_graph_with_quantized_upsampler_warns_only_at_pixel_shuffle(tiny16) -> None:
    model, fp32, g = tiny16
    plan = make_plan(
        model, (fp32, g), weight_bits=8, act_bits=8, method="mse", quantize_roles=["body", "upsampler", "tail"]
    )
    trt = emit(model, fp32, plan, "trt")
    report = lint_trt(trt)
    assert report.ok and report.rules("warning") == {"qdq-data-movement"}
    assert all(f.node.endswith(":DepthToSpace") for f in report.warnings)


def test_real_ort_graphs_are_rejected(tiny16) -> None:
    model, fp32, g = tiny16
    ort8 = emit(model, fp32, make_plan(model, (fp32, g), weight_bits=8, act_bits=8, method="mse"), "ort")
    assert {"qdq-dtype", "zero-point"} <= lint_trt(ort8).rules("error")
    plan4 = make_plan(model, (fp32, g), weight_bits=4, act_bits=8, method="mse")
    assert plan4.emission["ort"].int4_weights
    ort4 = emit(model, fp32, plan4, "ort")
    assert "qdq-int4-conv" in lint_trt(ort4).rules("error")


def test_real_sparse_trt_graph(tiny16) -> None:
    model, fp32, g = tiny16
    r = recipe(dict(weight_bits=8, act_bits=8, method="mse"), sparsity={"policy": "uniform", "refit": False})
    plan = plan_for(model, fp32, g, r)
    body = sorted(plan.masks)
    assert {w for w in g.convs if w.startswith("body.")} == set(body)
    trt = emit(model, fp32, plan, "trt")
    meta = {p.key: p.value for p in trt.metadata_props}
    assert sorted(json.loads(meta["srdeploy.sparse_2of4_weights"])) == sorted(body) and body
    clean = lint_trt(trt)
    assert clean.errors == () and clean.warnings == ()
    init = next(i for i in trt.graph.initializer if i.name == body[0])
    dense = numpy_helper.to_array(init).copy()
    dense[:, :4] = 1  # a whole group of 4 input channels non-zero
    init.CopyFrom(numpy_helper.from_array(dense, body[0]))
    assert [f.node for f in lint_trt(trt).findings if f.rule == "sparse-2of4"] == [body[0]]


def test_lint_trt_main_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    onnx.save(graph(), tmp_path / "ok.onnx")
    onnx.save(graph(zp_type=TensorProto.UINT8), tmp_path / "bad.onnx")
    onnx.save(graph(float_skip=True), tmp_path / "warn.onnx")
    assert lint_trt_main(tmp_path / "ok.onnx") == 0
    assert lint_trt_main(tmp_path / "warn.onnx") == 0
    assert "residual-add" in capsys.readouterr().out
    assert lint_trt_main(tmp_path / "bad.onnx") == 1
    assert "qdq-dtype" in capsys.readouterr().out
    assert lint_trt_main(tmp_path / "missing.onnx") == 2
    assert "not found" in capsys.readouterr().err
    assert lint_trt(tmp_path / "bad.onnx").summary().startswith(str(tmp_path / "bad.onnx"))
