"""TensorRT lint, part 1: Q/DQ validity (what TensorRT's ONNX parser and builder refuse).

Based on onnx-tensorrt's QuantDequantLinearHelper (TensorRT 10/11): scales constant and positive,
zero points all zero with as many values as the scale, per-channel scale count = the channels on
the axis, quantized types INT8/FP8 (INT4/FP4 weight-only for GEMMs), and ONNX opset rules.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from onnx import TensorProto

from srdeploy.passes.lint_trt_graph import ERROR, QDQ_OPS, WARNING, Finding, GraphIndex, type_name

_PREQUANTIZED = frozenset({"ConvInteger", "MatMulInteger", "DynamicQuantizeLinear", "QGemm", "QAttention"})
_FP4 = getattr(TensorProto, "FLOAT4E2M1", -1)
_FOUR_BIT = frozenset({TensorProto.INT4, _FP4})
_OK_TYPES = frozenset({TensorProto.INT8, TensorProto.FLOAT8E4M3FN})


def rule_qdq_format(ix: GraphIndex) -> Iterator[Finding]:
    for node in ix.nodes:
        if node.op_type in _PREQUANTIZED or node.op_type.startswith("QLinear"):
            yield Finding(
                "qdq-format",
                ERROR,
                ix.label(node),
                f"{node.op_type} is a pre-quantized operator: TensorRT imports only QDQ-format graphs "
                "(QuantizeLinear/DequantizeLinear around float operators)",
            )


def rule_qdq_types(ix: GraphIndex) -> Iterator[Finding]:
    for node in ix.nodes:
        if node.op_type not in QDQ_OPS:
            continue
        out_users = ix.users(node.output[0])
        if (
            node.op_type == "QuantizeLinear"
            and out_users
            and all(u.op_type == "DequantizeLinear" for u, _ in out_users)
        ):
            continue  # checked on its DequantizeLinear (same type)
        t = ix.quant_type(node)
        if t is None or t in _OK_TYPES:
            continue
        label = ix.label(node)
        if t in _FOUR_BIT:
            users = {u.op_type for u, i in out_users if i == 1 or u.op_type in ("MatMul", "Gemm")}
            if ix.weight_source(node) is None:
                yield Finding(
                    "qdq-dtype",
                    ERROR,
                    label,
                    f"{type_name(t)} on an activation: TensorRT runs "
                    "4-bit types only as weight-only quantization of MatMul/Gemm",
                )
            elif users & {"Conv", "ConvTranspose"}:
                yield Finding(
                    "qdq-int4-conv",
                    ERROR,
                    label,
                    f"{type_name(t)} weights on a convolution: TensorRT "
                    "convolutions run INT8 or FP8 only (store <= 4-bit conv weights in int8)",
                )
            elif not users <= {"MatMul", "Gemm"}:
                yield Finding(
                    "qdq-dtype",
                    ERROR,
                    label,
                    f"{type_name(t)} weights feed {sorted(users)}: "
                    "TensorRT supports 4-bit weights only for MatMul/Gemm",
                )
            continue
        hint = " (no zero point: ONNX defaults to uint8)" if not ix.input_at(node, 2) else ""
        if t == TensorProto.UINT8:
            hint += "; on the GPU TensorRT reads UINT8 Q/DQ as INT8 (UINT8 is DLA-only), changing the numerics"
        yield Finding(
            "qdq-dtype",
            ERROR,
            label,
            f"quantized type {type_name(t)}{hint}: TensorRT supports INT8 "
            "and FP8 (E4M3), plus INT4/FP4 for MatMul/Gemm weights",
        )


def rule_zero_points(ix: GraphIndex) -> Iterator[Finding]:
    for node in ix.nodes:
        zp = ix.input_at(node, 2) if node.op_type in QDQ_OPS else ""
        if not zp:
            continue
        label = ix.label(node)
        if not ix.is_const(zp):
            yield Finding("zero-point", ERROR, label, f"zero point '{zp}' is not a constant")
            continue
        arr = ix.float_array(zp)
        if arr is not None and np.any(arr != 0):
            yield Finding(
                "zero-point",
                ERROR,
                label,
                f"zero point '{zp}' has non-zero values "
                f"(e.g. {arr.ravel()[np.flatnonzero(arr)[0]]:g}): TensorRT is symmetric only",
            )
        s_size, z_size = ix.const_size(ix.input_at(node, 1)), ix.const_size(zp)
        if s_size is not None and z_size is not None and s_size != z_size:
            yield Finding("zero-point", ERROR, label, f"zero point has {z_size} values, scale {s_size}")


def rule_scales(ix: GraphIndex) -> Iterator[Finding]:
    for node in ix.nodes:
        if node.op_type not in QDQ_OPS:
            continue
        scale, label = ix.input_at(node, 1), ix.label(node)
        if not ix.is_const(scale):
            yield Finding(
                "scale-constant",
                ERROR,
                label,
                f"scale '{scale}' is computed at run time: TensorRT needs Q/DQ scales as constant initializers",
            )
            continue
        arr = ix.float_array(scale)
        if arr is None:
            continue
        bad = ~(np.isfinite(arr) & (arr > 0))
        if bad.any():
            yield Finding(
                "scale-value",
                ERROR,
                label,
                f"scale '{scale}' has {int(bad.sum())} value(s) that are "
                f"not positive and finite (e.g. {arr.ravel()[np.flatnonzero(bad)[0]]:g})",
            )


def rule_granularity(ix: GraphIndex) -> Iterator[Finding]:
    for node in ix.nodes:
        if node.op_type not in QDQ_OPS or not ix.is_const(ix.input_at(node, 1)):
            continue
        size, label = ix.const_size(ix.input_at(node, 1)) or 1, ix.label(node)
        weight = ix.weight_source(node)
        if weight is None:
            if size > 1:
                yield Finding(
                    "activation-per-tensor",
                    ERROR,
                    label,
                    f"activation scale has {size} values: TensorRT quantizes activations per tensor (one scale)",
                )
            continue
        if node.op_type != "DequantizeLinear":
            continue
        dims = ix.const_dims(weight) or ()
        for user, i in ix.users(node.output[0]):
            if user.op_type not in ("Conv", "ConvTranspose") or i != 1:
                continue
            expected = 0 if user.op_type == "Conv" else 1
            if size == 1:
                yield Finding(
                    "weight-per-channel",
                    WARNING,
                    label,
                    f"{user.op_type} weight '{weight}' has one "
                    f"scale: the plan quantizes conv weights per output channel (axis {expected})",
                )
                continue
            scale_rank = len(ix.const_dims(ix.input_at(node, 1)) or ())
            axis = ix.axis(node, len(dims))
            n = dims[expected] if len(dims) > expected else -1
            if scale_rank != 1 or axis != expected or size != n:
                yield Finding(
                    "weight-per-channel",
                    ERROR,
                    label,
                    f"{user.op_type} weight '{weight}' {dims}: scale "
                    f"{size} values on axis {axis}; TensorRT needs one per output channel on axis "
                    f"{expected} ({n} values, 1-D)",
                )


def rule_opset(ix: GraphIndex) -> Iterator[Finding]:
    qdq = [n for n in ix.nodes if n.op_type in QDQ_OPS]
    if not qdq:
        return
    needs: list[tuple[int, str, str]] = [(13, "QuantizeLinear/DequantizeLinear with axis", ix.label(qdq[0]))]
    for node in qdq:
        s_type = ix.elem_types.get(ix.input_at(node, 1))
        if s_type in (TensorProto.FLOAT16, TensorProto.BFLOAT16):
            needs.append((19, f"{type_name(s_type)} scales", ix.label(node)))
        q_type = ix.quant_type(node)
        if q_type == TensorProto.FLOAT8E4M3FN:
            needs.append((19, "FP8 Q/DQ", ix.label(node)))
        elif q_type in (TensorProto.INT4, TensorProto.UINT4):
            needs.append((21, "INT4 Q/DQ", ix.label(node)))
        elif q_type == _FP4:
            needs.append((23, "FP4 Q/DQ", ix.label(node)))
    seen: set[str] = set()
    for version, what, label in sorted(needs, key=lambda x: -x[0]):
        if ix.opset < version and what not in seen:
            seen.add(what)
            yield Finding("opset", ERROR, label, f"{what} need opset >= {version}; the graph imports {ix.opset}")


QDQ_RULES = (rule_qdq_format, rule_qdq_types, rule_zero_points, rule_scales, rule_granularity, rule_opset)
