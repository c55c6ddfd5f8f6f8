"""TensorRT lint, part 2: placement and precision (what builds but runs slowly or off-plan).

Based on TensorRT's explicit-quantization placement advice: quantize conv
inputs, not conv outputs; at a residual Add quantize the skip only, so Conv+Add fuse; no Q/DQ
around data-movement ops; FP16 float regions (strongly typed); dynamic H/W; 2:4 weights valid.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from onnx import TensorProto

from srdeploy.passes.lint_trt_graph import INFO, WARNING, WEIGHTED_OPS, Finding, GraphIndex
from srdeploy.sparsity import nm

SPARSE_KEY = "srdeploy.sparse_2of4_weights"
FLOAT_SKIPS_KEY = "srdeploy.float_residual_adds"
_DATA_MOVEMENT = ("DepthToSpace", "Reshape", "Transpose")
_FLOAT_EXEMPT = frozenset({"Cast", "Constant"})


def rule_data_movement(ix: GraphIndex) -> Iterator[Finding]:
    for node in ix.nodes:
        if node.op_type not in _DATA_MOVEMENT:
            continue
        where = []
        if ix.produced_by(ix.input_at(node, 0), "DequantizeLinear") is not None:
            where.append("its input comes from a DequantizeLinear")
        if any(u.op_type == "QuantizeLinear" for u, _ in ix.users(node.output[0])):
            where.append("its output feeds a QuantizeLinear")
        if where:
            yield Finding(
                "qdq-data-movement",
                WARNING,
                ix.label(node),
                f"{node.op_type}: {' and '.join(where)}; "
                "TensorRT must move the Q/DQ across it to fuse (check the engine), or it adds "
                "reformats",
            )


def _skip_of_conv_add(ix: GraphIndex, add_node, index: int) -> bool:
    other = ix.input_at(add_node, 1 - index) if len(add_node.input) == 2 else ""
    conv = ix.produced_by(other, "Conv", "ConvTranspose")
    return conv is not None and ix.quantized_conv(conv)


def _both_dequantized(ix: GraphIndex, add_node) -> bool:
    return len(add_node.input) == 2 and all(ix.produced_by(x, "DequantizeLinear") for x in add_node.input)


def rule_conv_output(ix: GraphIndex) -> Iterator[Finding]:
    """A Q on a conv output is fine when it only quantizes the next weighted op's input or the skip
    of a conv+add; anything else (Relu, DepthToSpace, a branch Add, the graph output) quantizes the
    conv's output itself, which the plan does not do for TensorRT."""
    for node in ix.nodes:
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        for q, _ in ix.users(node.output[0]):
            if q.op_type != "QuantizeLinear":
                continue
            bad = []
            for dq, _ in ix.users(q.output[0]):
                if dq.op_type != "DequantizeLinear":
                    continue
                if dq.output[0] in ix.graph_outputs:
                    bad.append("the graph output")
                for user, i in ix.users(dq.output[0]):
                    weighted_input = user.op_type in WEIGHTED_OPS and (i == 0 or user.op_type == "MatMul")
                    # An Add with both inputs dequantized is reported once, by rule_residual_add.
                    skip = user.op_type == "Add" and (_skip_of_conv_add(ix, user, i) or _both_dequantized(ix, user))
                    if not (weighted_input or skip):
                        bad.append(f"{user.op_type} {ix.label(user)}")
            if bad:
                yield Finding(
                    "conv-output-quantized",
                    WARNING,
                    ix.label(node),
                    f"output quantized by "
                    f"{ix.label(q)} for {', '.join(sorted(set(bad)))}: TensorRT keeps conv outputs in "
                    "float unless the consumer is a quantized conv input or a residual skip",
                )


def rule_residual_add(ix: GraphIndex) -> Iterator[Finding]:
    raw = next((p.value for p in ix.model.metadata_props if p.key == FLOAT_SKIPS_KEY), "[]")
    try:
        float_skips = {str(x) for x in json.loads(raw)}
    except (ValueError, TypeError):
        float_skips = set()
    for node in ix.nodes:
        if node.op_type != "Add" or len(node.input) != 2 or any(ix.is_const(x) for x in node.input):
            continue
        dq = [ix.produced_by(x, "DequantizeLinear") is not None for x in node.input]
        conv = [
            (p := ix.produced_by(x, "Conv", "ConvTranspose")) is not None and ix.quantized_conv(p) for x in node.input
        ]
        if all(dq):
            yield Finding(
                "residual-add",
                WARNING,
                ix.label(node),
                "both inputs are dequantized: the branch is quantized too, so conv+add will not fuse "
                "(quantize the skip input only)",
            )
        elif any(conv[i] and not dq[1 - i] for i in (0, 1)):
            deliberate = node.name in float_skips
            yield Finding(
                "residual-add",
                INFO if deliberate else WARNING,
                ix.label(node),
                "one input comes from a quantized Conv and the other is not dequantized: conv+add will not fuse"
                + (
                    " (skip kept in float on purpose: quant.residual_skips)"
                    if deliberate
                    else " (put Q/DQ on the skip input)"
                ),
            )


def rule_fp16_regions(ix: GraphIndex) -> Iterator[Finding]:
    for node in ix.nodes:
        if node.op_type in _FLOAT_EXEMPT:
            continue
        fp32 = [o for o in node.output if ix.elem_types.get(o) == TensorProto.FLOAT]
        if fp32:
            yield Finding(
                "fp16-region",
                WARNING,
                ix.label(node),
                f"{node.op_type} outputs float32 ('{fp32[0]}'): "
                "strongly typed TensorRT (11, and srdeploy's 10 builds) runs it in FP32, not FP16",
            )


def rule_static_hw(ix: GraphIndex) -> Iterator[Finding]:
    inputs = [i for i in ix.model.graph.input if not ix.is_const(i.name)]
    if not inputs:
        return
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        return  # not an NCHW image network: nothing to say about H/W
    static = [("H", "W")[k - 2] + f"={dims[k].dim_value}" for k in (2, 3) if dims[k].dim_value > 0]
    if static:
        yield Finding(
            "static-hw",
            WARNING,
            inputs[0].name,
            f"input has static {', '.join(static)}: the engine "
            "runs only that size (export with dynamic H/W for optimization profiles)",
        )


def rule_sparse(ix: GraphIndex) -> Iterator[Finding]:
    raw = next((p.value for p in ix.model.metadata_props if p.key == SPARSE_KEY), "")
    if not raw:
        return
    try:
        names = [str(x) for x in json.loads(raw)]
    except (ValueError, TypeError):
        yield Finding("sparse-2of4", WARNING, SPARSE_KEY, f"metadata is not a JSON list: {raw[:80]!r}")
        return
    for name in names:
        w = ix.float_array(name)
        if w is None or w.ndim != 4:
            yield Finding("sparse-2of4", WARNING, name, "listed as 2:4 sparse but no 4-D weight of that name")
            continue
        k, c = w.shape[:2]
        if c % 4:
            yield Finding(
                "sparse-2of4",
                WARNING,
                name,
                f"input channels {c} are not a multiple of 4: TensorRT cannot run this layer 2:4 sparse",
            )
            continue
        if not nm.satisfies(w, 2, 4):
            yield Finding(
                "sparse-2of4",
                WARNING,
                name,
                f"{nm.violations(w, 2, 4)} group(s) of 4 input channels "
                "have more than 2 non-zeros: not 2:4, TensorRT will run it dense",
            )
        if k % 8 or c % 16:
            yield Finding(
                "sparse-2of4",
                WARNING,
                name,
                f"shape {tuple(w.shape)}: TensorRT may not pick sparse kernels unless K % 8 == 0 and C % 16 == 0",
            )


PLACEMENT_RULES = (
    rule_data_movement,
    rule_conv_output,
    rule_residual_add,
    rule_fp16_regions,
    rule_static_hw,
    rule_sparse,
)
