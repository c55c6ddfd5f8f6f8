"""Where a QDQ graph quantizes, node by node, and how two such graphs of one fp32 model differ.

For every node of the fp32 graph, found by name in a quantized graph: each input's quantization
(none, or weight/activation, integer type, per-tensor or per-channel scale, zero point, a Clip
before the Q), whether the output feeds a Q, and the float dtype the node computes in. Cast and
Identity nodes (FP16 conversion) are looked through. Used by tools/crosscheck_modelopt.py to set
srdeploy's `trt` graph against NVIDIA ModelOpt's; pure ONNX, no TensorRT.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import onnx

from srdeploy.passes.lint_trt_graph import GraphIndex, type_name

_TRANSPARENT = ("Cast", "Identity")


def _through(ix: GraphIndex, tensor: str) -> str:
    """The tensor before any chain of Cast/Identity producers."""
    node = ix.producer.get(tensor)
    while node is not None and node.op_type in _TRANSPARENT:
        tensor = node.input[0]
        node = ix.producer.get(tensor)
    return tensor


def _qinfo(ix: GraphIndex, dq: onnx.NodeProto) -> dict[str, Any]:
    weight = ix.weight_source(dq)
    q = None if weight is not None else ix.produced_by(ix.input_at(dq, 0), "QuantizeLinear")
    scale = ix.const_dims(ix.input_at(dq, 1)) or ()
    size = 1
    for d in scale:
        size *= d
    zp = ix.float_array(ix.input_at(dq, 2)) if ix.input_at(dq, 2) else None
    clip = q is not None and ix.produced_by(_through(ix, ix.input_at(q, 0)), "Clip") is not None
    return dict(
        kind="weight" if weight is not None else "activation",
        dtype=type_name(ix.quant_type(dq)),
        granularity="per-tensor" if size <= 1 else f"per-channel(axis={ix.axis(dq, 4)})",
        zero_point="nonzero" if zp is not None and bool((zp != 0).any()) else "zero",
        clip=bool(clip),
        scale_dtype=type_name(ix.elem_types.get(ix.input_at(dq, 1))),
    )


def _output_quantized(ix: GraphIndex, tensor: str) -> bool:
    frontier, seen = [tensor], set()
    while frontier:
        t = frontier.pop()
        seen.add(t)
        for user, _ in ix.users(t):
            if user.op_type == "QuantizeLinear":
                return True
            if user.op_type in _TRANSPARENT and user.output[0] not in seen:
                frontier.append(user.output[0])
    return False


def describe_node(ix: GraphIndex, node: onnx.NodeProto) -> dict[str, Any]:
    inputs: list[dict[str, Any] | None] = []
    for name in node.input:
        dq = ix.produced_by(_through(ix, name), "DequantizeLinear") if name else None
        inputs.append(None if dq is None else _qinfo(ix, dq))
    out = node.output[0] if node.output else ""
    return dict(
        op=node.op_type,
        inputs=inputs,
        output_quantized=_output_quantized(ix, out),
        float_dtype=type_name(ix.elem_types.get(out)),
    )


def describe(model: onnx.ModelProto, names: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """Layout of each named node (None where the quantized graph has no node of that name)."""
    ix = GraphIndex.build(model)
    by_name = {n.name: n for n in ix.nodes if n.name}
    return {name: describe_node(ix, by_name[name]) if name in by_name else None for name in names}


def quant_label(info: Mapping[str, Any] | None) -> str:
    if info is None:
        return "float"
    zp = "" if info["zero_point"] == "zero" else ", zero point"
    clip = ", Clip" if info["clip"] else ""
    return f"{info['kind']} {info['dtype']} {info['granularity']}{zp}{clip}"


def roles(fp32: onnx.ModelProto) -> dict[str, str]:
    """fp32 node name -> what it is for the comparison (first/last conv, residual Add, ...)."""
    ix = GraphIndex.build(fp32)
    convs = [n.name for n in ix.nodes if n.op_type == "Conv"]
    out: dict[str, str] = {}
    for n in ix.nodes:
        part = n.name.split(".", 1)[0] if "." in n.name else n.name.split(":", 1)[0]
        if n.op_type == "Conv":
            where = "first conv" if n.name == convs[0] else "last conv" if n.name == convs[-1] else f"{part} conv"
            out[n.name] = where
        elif n.op_type == "Add" and not any(ix.is_const(_through(ix, i)) for i in n.input):
            out[n.name] = "residual Add"
        elif n.op_type in ("Add", "Sub", "Mul", "Div") and any(ix.is_const(_through(ix, i)) for i in n.input):
            out[n.name] = f"{n.op_type} with a constant ({part})"
        else:
            out[n.name] = n.op_type
    return out


def diff(
    fp32: onnx.ModelProto, a: onnx.ModelProto, b: onnx.ModelProto, labels: tuple[str, str] = ("a", "b")
) -> list[dict[str, Any]]:
    """One row per fp32 node whose layout differs between ``a`` and ``b``, in graph order."""
    role = roles(fp32)
    names = [n.name for n in fp32.graph.node if n.name]
    la, lb = describe(a, names), describe(b, names)
    rows = []
    for name in names:
        da, db = la[name], lb[name]
        row = {"node": name, "role": role[name]}
        if da is None or db is None:
            rows.append({**row, "what": "node missing", labels[0]: da is not None, labels[1]: db is not None})
            continue
        for i, (qa, qb) in enumerate(zip(da["inputs"], db["inputs"], strict=False)):
            if quant_label(qa) != quant_label(qb):
                rows.append({**row, "what": f"input {i}", labels[0]: quant_label(qa), labels[1]: quant_label(qb)})
        for key in ("output_quantized", "float_dtype"):
            if da[key] != db[key]:
                rows.append({**row, "what": key, labels[0]: da[key], labels[1]: db[key]})
    return rows


def summarize_diff(rows: Iterable[Mapping[str, Any]], labels: tuple[str, str]) -> list[dict[str, Any]]:
    """Rows grouped by (role, what, a, b) with a count and example nodes: one line per kind of difference."""
    counts: Counter[tuple[str, str, str, str]] = Counter()
    examples: dict[tuple[str, str, str, str], list[str]] = {}
    for r in rows:
        key = (r["role"], r["what"], str(r[labels[0]]), str(r[labels[1]]))
        counts[key] += 1
        examples.setdefault(key, []).append(r["node"])
    return [
        dict(role=k[0], what=k[1], **{labels[0]: k[2], labels[1]: k[3]}, nodes=n, examples=examples[k][:3])
        for k, n in counts.most_common()
    ]


def graph_facts(model: onnx.ModelProto) -> dict[str, Any]:
    """Whole-graph facts: opset, I/O dtypes, Q/DQ counts, float dtypes of computed tensors."""
    ix = GraphIndex.build(model)
    ops = Counter(n.op_type for n in ix.nodes)
    floats = Counter(
        type_name(ix.elem_types.get(o))
        for n in ix.nodes
        if n.op_type not in ("QuantizeLinear", "Constant")
        for o in n.output
        if type_name(ix.elem_types.get(o)) in ("FLOAT", "FLOAT16", "BFLOAT16")
    )
    return dict(
        opset=ix.opset,
        inputs={i.name: type_name(i.type.tensor_type.elem_type) for i in model.graph.input},
        outputs={o.name: type_name(o.type.tensor_type.elem_type) for o in model.graph.output},
        quantize_linear=ops.get("QuantizeLinear", 0),
        dequantize_linear=ops.get("DequantizeLinear", 0),
        casts=ops.get("Cast", 0),
        float_tensors=dict(floats),
        ops=dict(sorted(ops.items())),
    )
