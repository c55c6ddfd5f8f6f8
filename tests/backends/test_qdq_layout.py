"""qdq_layout on srdeploy's own two profiles of one tiny EDSR, whose layouts differ in documented
ways (docs/ARCHITECTURE.md): trt has int8 activations with zero point 0, no Q on conv outputs and
FP16 float regions; ort has uint8 asymmetric activations and Q on conv outputs."""

from __future__ import annotations

import onnx
import pytest
from srtest import exported, make_plan, params, tiny_edsr

from srdeploy.backends.qdq_layout import describe, diff, graph_facts, quant_label, roles, summarize_diff
from srdeploy.passes.rewrite import rewrite

BODY_CONV = "body.0.body.0:Conv"


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> tuple[onnx.ModelProto, onnx.ModelProto, onnx.ModelProto]:
    model = tiny_edsr(feats=16)
    fp32, g = exported(model, tmp_path_factory.mktemp("layout"))
    plan = make_plan(model, (fp32, g), weight_bits=8, act_bits=8, method="minmax")
    w = params(model, plan)
    return fp32, rewrite(fp32, plan, "trt", 0, w)[0], rewrite(fp32, plan, "ort", 0, w)[0]


def test_fp32_graph_quantizes_nothing(graphs) -> None:
    fp32 = graphs[0]
    layout = describe(fp32, [n.name for n in fp32.graph.node])
    assert all(all(i is None for i in d["inputs"]) and not d["output_quantized"] for d in layout.values())
    assert {d["float_dtype"] for d in layout.values() if d["op"] == "Conv"} == {"FLOAT"}


def test_trt_body_conv_layout(graphs) -> None:
    fp32, trt, _ = graphs
    conv = describe(trt, [BODY_CONV])[BODY_CONV]
    assert quant_label(conv["inputs"][0]) == "activation INT8 per-tensor"
    assert quant_label(conv["inputs"][1]) == "weight INT8 per-channel(axis=0)"
    assert conv["inputs"][2] is None  # bias stays float
    assert not conv["output_quantized"] and conv["float_dtype"] == "FLOAT16"
    assert roles(fp32)[BODY_CONV] == "body conv" and "first conv" in roles(fp32).values()


def test_diff_of_the_two_profiles_names_the_documented_differences(graphs) -> None:
    fp32, trt, ort = graphs
    assert diff(fp32, trt, trt, ("x", "y")) == []
    rows = diff(fp32, trt, ort, ("trt", "ort"))
    body = {r["what"]: r for r in rows if r["node"] == BODY_CONV}
    assert body["output_quantized"]["trt"] is False and body["output_quantized"]["ort"] is True
    assert body["float_dtype"]["trt"] == "FLOAT16" and body["float_dtype"]["ort"] == "FLOAT"
    assert body["input 0"]["ort"].startswith("activation UINT8 per-tensor")
    assert "input 1" not in body  # both quantize weights the same way
    kinds = summarize_diff(rows, ("trt", "ort"))
    assert sum(k["nodes"] for k in kinds) == len(rows)
    assert any(k["role"] == "body conv" and k["what"] == "output_quantized" for k in kinds)


def test_graph_facts(graphs) -> None:
    _, trt, ort = graphs
    t, o = graph_facts(trt), graph_facts(ort)
    assert list(t["inputs"].values()) == ["FLOAT"] and list(t["outputs"].values()) == ["FLOAT"]
    assert t["casts"] >= 2 and t["float_tensors"].get("FLOAT16", 0) > 0
    assert o["float_tensors"].get("FLOAT16", 0) == 0 and o["quantize_linear"] > t["quantize_linear"]
