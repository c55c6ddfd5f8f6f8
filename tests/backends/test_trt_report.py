"""trt_report: inspector JSON of TensorRT 10 and 11 against a hand-made plan.

The samples mimic real IEngineInspector output (DETAILED): field names and format strings as in
NVIDIA/TensorRT's trt-engine-explorer (trex/layer.py, activations.py) for 10.x, and the 11.x schema
change ("Bindings" -> "I/O Tensors", "Format/Datatype" split into "Format" + "Datatype") from the
TensorRT 11 migration guide. Names follow srdeploy's `<module>:<Op>` node naming.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from srdeploy.backends.trt_report import (
    compare_engine_to_plan,
    layer_precision,
    layers_from_engine_json,
    onnx_nodes,
    parse_sparsity_log,
    summarize,
    tensor_precision,
)
from srdeploy.quant.plan import LayerInfo, ModelRef, NMMask, QuantPlan, Tier
from srdeploy.quant.spec import QuantSpec
from srdeploy.sparsity.nm import nm_mask

US, RS = "\x1e", "\x1f"  # TensorRT's separators inside Metadata
B1 = "body.1.body.0.weight + body.1.body.0.weight:DequantizeLinear + body.1.body.0:Conv + body.1.body.1:Relu"


_DTYPES = {"Int8": "Int8", "FP16": "Half", "FP32": "Float"}


def _io(fmt: str, v11: bool) -> list[dict]:
    """A layer tensor: 10.x "Format/Datatype" in one string; 11.x "Format" (no type word) + "Datatype"."""
    t = {"Name": "t", "Location": "Device", "Dimensions": [1, 16, 32, 32]}
    if not v11:
        return [{**t, "Format/Datatype": fmt}]
    word = next(w for w in _DTYPES if w in fmt)
    return [{**t, "Format": " ".join(fmt.replace(word, "").split()), "Datatype": _DTYPES[word]}]


def engine_json(v11: bool) -> str:
    i8 = "Thirty-two wide channel vectorized row major Int8 format"
    f16 = "Channel major FP16 format where channel % 8 == 0"
    layers = [
        {"Name": "input:Cast", "LayerType": "Reformat", "Inputs": _io("Row major linear FP32", v11)},
        {
            "Name": "head.0:Conv",
            "LayerType": "CaskConvolution",
            "ParameterType": "Convolution",
            "Inputs": _io(f16, v11),
            "Outputs": _io(f16, v11),
            "Weights": {"Type": "Half", "Count": 432},
            "HasSparseWeights": 0,
            "TacticName": "sm86_xmma_fprop_implicit_gemm_f16f16_f16f16_f16_nhwckrsc_nhwc_tilesize64x64x64",
            "Metadata": "[ONNX Layer: head.0:Conv]",
        },
        {"Name": "Reformatting CopyNode for Input Tensor 0 to " + B1, "LayerType": "Reformat", "Inputs": _io(f16, v11)},
        {
            "Name": B1,
            "LayerType": "CaskConvolution",
            "ParameterType": "Convolution",
            "Inputs": _io(i8, v11),
            "Outputs": _io(i8, v11),
            "Weights": {"Type": "Int8", "Count": 2304},
            "HasSparseWeights": 1,
            "TacticName": "sm86_xmma_fprop_sparse_conv_interleaved_i8i8_i8i32_f32_nchw_vect_c_32kcrs_vect_c_32",
        },
        {  # INT8 planned, but TensorRT ran it in FP16 (e.g. a Q/DQ it could not fuse)
            "Name": "__myl_ConvAdd_0",
            "LayerType": "kgen",
            "Inputs": _io(f16, v11),
            "Weights": {"Type": "Half", "Count": 2304},
            "TacticName": "__myl_ConvAdd_0",
            "Metadata": f"[ONNX Layer: body.11.body.0.weight:DequantizeLinear]{US}[ONNX Layer: body.11.body.0:Conv]"
            f"{RS}[ONNX Layer: body.11.add:Add]",
        },
        {  # formats unresolved (no execution context): the weights type decides
            "Name": "body.2.body.0:Conv",
            "LayerType": "CaskConvolution",
            "ParameterType": "Convolution",
            "Inputs": [{"Name": "t", "Dimensions": [-1, 16, -1, -1], "Format/Datatype": "N/A due to dynamic shapes"}],
            "Weights": {"Type": "Int8", "Count": 2304},
            "HasSparseWeights": 0,
            "TacticName": "sm80_xmma_fprop_implicit_gemm_interleaved_i8f32_i8i32_f32_nchw_vect_c_32kcrs_vect_c_32",
        },
    ]
    io = (
        {"I/O Tensors": [{"Name": "input", "IOMode": "Input", "DataType": "Float"}]}
        if v11
        else {"Bindings": ["input", "output"]}
    )
    return json.dumps({"Layers": layers, **io})


SPARSE_LOG = [
    "[INFO] [MemUsageChange] Init CUDA: CPU +2, GPU +0, now: CPU 20, GPU 300 (MiB)",
    f"[INFO] (Sparsity) Layers eligible for sparse math: {B1}, body.11.body.0:Conv + body.11.add:Add",
    f"[INFO] (Sparsity) TRT inference plan picked sparse implementation for layers: {B1}",
]


def _layer(weight: str, role: str, quantized: bool) -> LayerInfo:
    return LayerInfo(weight, weight.rsplit(".", 1)[0], role, quantized, "", 16, 16, (3, 3), 1, 2304.0)


def make_plan() -> QuantPlan:
    layers = (
        _layer("head.0.weight", "head", False),
        _layer("body.1.body.0.weight", "body", True),
        _layer("body.11.body.0.weight", "body", True),
        _layer("body.2.body.0.weight", "body", True),
        _layer("tail.0.weight", "tail", False),
    )
    spec = QuantSpec(bits=4, signed=True, scale=np.ones(16, np.float32), zero_point=np.zeros(16, np.int32), axis=0)
    weights = {x.weight: spec for x in layers if x.quantized}
    w = np.random.default_rng(0).standard_normal((16, 16, 3, 3)).astype(np.float32)
    masks = {
        "body.1.body.0.weight": NMMask(2, 4, nm_mask(w, 2, 4)),
        "body.11.body.0.weight": NMMask(1, 4, nm_mask(w, 1, 4)),  # 1:4 is 2:4-sparse too
        "body.2.body.0.weight": NMMask(3, 4, nm_mask(w, 3, 4)),  # not 2:4: TensorRT runs it dense
    }
    return QuantPlan(
        model=ModelRef("edsr", "t", 4), layers=layers, weights=weights, tiers=(Tier(0, "base", {}),), masks=masks
    )


@pytest.mark.parametrize("v11", [False, True], ids=["trt10", "trt11"])
def test_compare_engine_to_plan(v11: bool) -> None:
    layers = layers_from_engine_json(engine_json(v11))
    rows = {r["module"]: r for r in compare_engine_to_plan(layers, make_plan(), parse_sparsity_log(SPARSE_LOG))}
    assert rows["head.0"]["text"] == "conv head.0: planned FP16, built FP16; planned dense, built dense"
    assert rows["body.1.body.0"]["text"] == "conv body.1.body.0: planned INT8, built INT8; planned 2:4, built 2:4"
    assert rows["body.1.body.0"]["status"] == "ok" and rows["body.1.body.0"]["eligible_sparse"] is True
    assert rows["body.1.body.0"]["engine_layer"] == B1 and rows["body.1.body.0"]["weight_bits"] == 4
    b11 = rows["body.11.body.0"]
    assert (b11["built_precision"], b11["status"], b11["engine_layer"]) == (
        "FP16",
        "precision_mismatch",
        "__myl_ConvAdd_0",
    )
    assert b11["planned_sparsity"] == "2:4 (1:4 mask)" and b11["planned_2of4"] and b11["eligible_sparse"] is True
    b2 = rows["body.2.body.0"]
    assert (b2["built_precision"], b2["precision_source"], b2["built_sparsity"]) == ("INT8", "weights type", "dense")
    assert b2["planned_sparsity"] == "3:4 (not 2:4)" and b2["status"] == "ok"  # dense as planned
    assert rows["tail.0"]["status"] == "not_found" and rows["tail.0"]["text"].endswith("not found in the engine")
    s = summarize(list(rows.values()))
    assert not s["ok"] and s["status"]["precision_mismatch"] == 1 and s["planned_2of4"] == 2 and s["built_2of4"] == 1


def test_planned_sparse_but_built_dense_is_reported() -> None:
    layers = [
        {"Name": "body.1.body.0:Conv", "Inputs": [{"Format/Datatype": "Int8"}], "TacticName": "sm90_xmma_fprop_i8i8"}
    ]
    row = next(r for r in compare_engine_to_plan(layers, make_plan(), None) if r["module"] == "body.1.body.0")
    assert row["status"] == "dense" and row["built_sparsity"] == "dense" and row["eligible_sparse"] is None
    assert row["text"].endswith("planned 2:4, built dense")


def test_a_mask_labelled_2of4_that_keeps_everything_is_planned_dense() -> None:
    plan = make_plan()
    plan.masks["body.1.body.0.weight"] = NMMask(2, 4, np.ones((16, 16, 3, 3), bool))
    layers = [{"Name": "body.1.body.0:Conv", "Inputs": [{"Format/Datatype": "Int8"}]}]
    row = next(r for r in compare_engine_to_plan(layers, plan, None) if r["module"] == "body.1.body.0")
    assert (row["planned_sparsity"], row["planned_2of4"], row["status"]) == ("2:4 (not 2:4)", False, "ok")


def test_layer_names_match_whole_nodes_only() -> None:
    layers = [{"Name": "body.11.body.0:Conv", "Inputs": [{"Format/Datatype": "Int8"}]}]
    rows = {r["module"]: r for r in compare_engine_to_plan(layers, make_plan(), {})}
    assert rows["body.1.body.0"]["status"] == "not_found"
    assert rows["body.11.body.0"]["engine_layer"] == "body.11.body.0:Conv"
    assert rows["body.11.body.0"]["status"] == "dense"  # found; its 1:4 mask could have run sparse


@pytest.mark.parametrize(
    ("tensor", "expected"),
    [
        ({"Format/Datatype": "Thirty-two wide channel vectorized row major Int8 format"}, "INT8"),
        ({"Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}, "FP16"),
        ({"Format/Datatype": "Row major linear FP32"}, "FP32"),
        ({"Format/Datatype": "Half"}, "FP16"),
        ({"Format/Datatype": "Row major linear BFloat16 format"}, "BF16"),
        ({"Format/Datatype": "Row major linear FP8 format"}, "FP8"),
        ({"Format": "Row major linear FP32 format (kLINEAR)", "Datatype": "Float"}, "FP32"),
        ({"Format": "kCHW32", "Datatype": "Int8"}, "INT8"),
        ({"Format/Datatype": "N/A due to dynamic shapes"}, None),
    ],
)
def test_tensor_precision(tensor: dict, expected: str | None) -> None:
    assert tensor_precision(tensor) == expected


def test_layer_precision_falls_back_to_tactic() -> None:
    layer = {"Inputs": [{"Format/Datatype": "N/A due to dynamic shapes"}], "TacticName": "sm80_xmma_fprop_i8f32_i8i32"}
    assert layer_precision(layer) == ("INT8", "tactic name")
    assert layer_precision({"TacticName": "sm86_xmma_fprop_implicit_gemm_f16f16_f16f16"}) == ("FP16", "tactic name")
    assert layer_precision({"Name": "x"}) == (None, "unknown")


def test_onnx_nodes_and_json_variants() -> None:
    layer = {"Name": "a:Conv + b:Relu [profile 1]", "Metadata": f"[ONNX Layer: a:Conv]{US}[ONNX Layer: c:Add]"}
    assert onnx_nodes(layer) == ["a:Conv", "c:Add", "b:Relu"]
    assert layers_from_engine_json({"Layers": ["n1", "n2"]}) == [{"Name": "n1"}, {"Name": "n2"}]
    assert layers_from_engine_json(['{"Name": "n1", "LayerType": "kgen"}']) == [{"Name": "n1", "LayerType": "kgen"}]
    assert len(layers_from_engine_json(engine_json(True))) == 6


def test_parse_sparsity_log() -> None:
    found = parse_sparsity_log("\n".join(SPARSE_LOG))
    assert found == {"eligible": [B1, "body.11.body.0:Conv + body.11.add:Add"], "chosen": [B1]}
    empty = parse_sparsity_log(["(Sparsity) TRT inference plan picked sparse implementation for layers:"])
    assert empty == {"eligible": [], "chosen": []}
