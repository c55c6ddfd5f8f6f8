"""passes/nhwc_entry.py: the integer residual stream starts in ONNX Runtime's NHWC layout through an exact
identity conv, so ORT drops the layout Transposes around every residual block; the output is bit-identical."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from srtest import exported, ort_fused, params, plan_for, recipe, tiny_edsr

import srdeploy.profiles as profiles
from srdeploy.passes.nhwc_entry import nhwc_entry
from srdeploy.passes.rewrite import rewrite

BLOCKS = 3
QUANT = dict(weight_bits=8, act_bits=8, method="mse", quantize_roles=["body", "upsampler", "tail"])
X = np.random.default_rng(5).random((1, 3, 14, 11)).astype(np.float32)
PLAIN = "ort_no_entry"  # the ort profile without the pass (this module only)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        for name, base in ((PLAIN, "ort"), (PLAIN + "_u8u8", "ort_u8u8")):
            mp.setitem(profiles.PROFILES, name, replace(profiles.PROFILES[base], name=name, nhwc_entry=False))
        model = tiny_edsr(blocks=BLOCKS, feats=16)
        fp32, graph = exported(model, tmp_path_factory.mktemp("nhwc"))
        names = ["ort", PLAIN, "ort_u8u8", PLAIN + "_u8u8"]
        plan = plan_for(model, fp32, graph, recipe(QUANT, export={"profiles": names}))
        yield {p: rewrite(fp32, plan, p, 0, params(model, plan))[0] for p in names}


def _entry_convs(proto: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in proto.graph.node if n.op_type == "Conv" and n.name.endswith(".nhwc_entry:Conv")]


def _optimized_ops(proto: onnx.ModelProto, tmp_path) -> list[str]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node]


def test_one_identity_conv_after_the_float_head(built) -> None:
    assert not _entry_convs(built[PLAIN])
    (conv,) = _entry_convs(built["ort"])
    producers = {o: n for n in built["ort"].graph.node for o in n.output}
    dq = producers[conv.input[0]]
    q = producers[dq.input[0]]
    assert dq.op_type == "DequantizeLinear" and q.op_type == "QuantizeLinear"
    assert producers[q.input[0]].name == "head.0:Conv"  # the float head feeds the first block's conv and skip


@pytest.mark.parametrize("profile", ["ort", "ort_u8u8"])
def test_output_is_bit_identical_and_transposes_go(built, profile: str, tmp_path) -> None:
    plain = PLAIN if profile == "ort" else PLAIN + "_u8u8"
    np.testing.assert_array_equal(ort_fused(built[profile], X), ort_fused(built[plain], X))
    with_entry = _optimized_ops(built[profile], tmp_path)
    without = _optimized_ops(built[plain], tmp_path)
    assert with_entry.count("QLinearConv") == without.count("QLinearConv") + 1  # the identity runs fused
    # without the entry ORT keeps a Transpose on each side of every block's QLinearAdd
    assert without.count("Transpose") - with_entry.count("Transpose") >= 2 * BLOCKS


def test_identity_weights_on_each_container(built) -> None:
    for profile, dtype, zero in (("ort", np.int8, 0), ("ort_u8u8", np.uint8, 128)):
        inits = {i.name: onnx.numpy_helper.to_array(i) for i in built[profile].graph.initializer}
        (name,) = [k for k in inits if k.endswith(".nhwc_entry.weight")]
        w, zp, scale = inits[name], inits[name + ".zero_point"], inits[name + ".scale"]
        assert w.dtype == dtype and np.all(zp == zero) and np.all(scale == 1)
        expect = np.eye(w.shape[0], dtype=np.int16)[:, :, None, None]
        np.testing.assert_array_equal(w.astype(np.int16) - zero, expect)


def test_second_run_changes_nothing(built) -> None:
    graph = gs.import_onnx(copy.deepcopy(built["ort"]))
    result = nhwc_entry(graph)
    assert not result.changed
    assert len(graph.nodes) == len(built["ort"].graph.node)


def test_no_entry_where_the_head_is_quantized(tmp_path) -> None:
    model = tiny_edsr(blocks=2, feats=16)
    fp32, graph = exported(model, tmp_path)
    quant = {**QUANT, "quantize_roles": ["head", "body", "upsampler", "tail"]}
    plan = plan_for(model, fp32, graph, recipe(quant, export={"profiles": ["ort"]}))
    proto = rewrite(fp32, plan, "ort", 0, params(model, plan))[0]
    assert not _entry_convs(proto)  # the head's QLinearConv already writes NHWC
