"""A read-only index of an ONNX graph for the TensorRT lint: producers, consumers, constants, dtypes.

Constants are initializers and ``Constant`` node outputs (both are build-time constants to
TensorRT's ONNX parser). Element types come from the graph itself plus ONNX shape inference.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

Severity = Literal["error", "warning", "info"]
ERROR: Severity = "error"  # TensorRT would refuse the graph
WARNING: Severity = "warning"  # it builds, but runs slowly or not as the plan intended
INFO: Severity = "info"  # a deliberate trade-off recorded by the rewrite (e.g. a float residual skip)
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm"})
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    node: str
    message: str


@dataclass
class GraphIndex:
    model: onnx.ModelProto
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    producer: dict[str, onnx.NodeProto] = field(default_factory=dict)
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = field(default_factory=dict)
    constants: dict[str, TensorProto] = field(default_factory=dict)
    elem_types: dict[str, int] = field(default_factory=dict)
    opset: int = 0
    graph_outputs: frozenset[str] = frozenset()

    @classmethod
    def build(cls, model: onnx.ModelProto) -> GraphIndex:
        g = model.graph
        idx = cls(model=model, nodes=list(g.node))
        consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = defaultdict(list)
        for node in g.node:
            for out in node.output:
                idx.producer[out] = node
            for i, name in enumerate(node.input):
                if name:
                    consumers[name].append((node, i))
            if node.op_type == "Constant" and node.output:
                for a in node.attribute:
                    if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                        idx.constants[node.output[0]] = a.t
        idx.consumers = dict(consumers)
        for init in g.initializer:
            idx.constants[init.name] = init
        idx.opset = next((op.version for op in model.opset_import if op.domain in ("", "ai.onnx")), 0)
        idx.graph_outputs = frozenset(o.name for o in g.output)
        idx.elem_types = _elem_types(model)
        for name, t in idx.constants.items():
            idx.elem_types[name] = t.data_type
        return idx

    # ------------------------------------------------------------------ lookups
    def label(self, node: onnx.NodeProto) -> str:
        return node.name or f"<unnamed {node.op_type} #{self.nodes.index(node)}>"

    def is_const(self, name: str) -> bool:
        return name in self.constants

    def array(self, name: str) -> np.ndarray | None:
        t = self.constants.get(name)
        if t is None:
            return None
        try:
            return np.asarray(numpy_helper.to_array(t))
        except Exception:  # external data not loaded, or a type numpy cannot hold
            return None

    def float_array(self, name: str) -> np.ndarray | None:
        arr = self.array(name)
        return None if arr is None else np.asarray(arr).astype(np.float64)

    def const_size(self, name: str) -> int | None:
        t = self.constants.get(name)
        return None if t is None else int(np.prod(list(t.dims), dtype=np.int64))

    def const_dims(self, name: str) -> tuple[int, ...] | None:
        t = self.constants.get(name)
        return None if t is None else tuple(int(d) for d in t.dims)

    def produced_by(self, name: str, *ops: str) -> onnx.NodeProto | None:
        node = self.producer.get(name)
        return node if node is not None and node.op_type in ops else None

    def users(self, name: str) -> list[tuple[onnx.NodeProto, int]]:
        return self.consumers.get(name, [])

    def input_at(self, node: onnx.NodeProto, i: int) -> str:
        return node.input[i] if len(node.input) > i else ""

    # ------------------------------------------------------------------ Q/DQ helpers
    def weight_source(self, qdq: onnx.NodeProto) -> str | None:
        """The constant a Q/DQ quantizes (DQ of a constant, or DQ <- Q <- constant), else None."""
        src = self.input_at(qdq, 0)
        if self.is_const(src):
            return src
        if qdq.op_type == "DequantizeLinear":
            q = self.produced_by(src, "QuantizeLinear")
            if q is not None and self.is_const(self.input_at(q, 0)):
                return self.input_at(q, 0)
        return None

    def quant_type(self, qdq: onnx.NodeProto) -> int | None:
        """The integer/fp8 type of a Q/DQ: zero-point type, else Q's output_dtype, else ONNX's uint8."""
        zp = self.input_at(qdq, 2)
        if qdq.op_type == "DequantizeLinear":
            t = self.elem_types.get(self.input_at(qdq, 0))
            return t if t else self.elem_types.get(zp) if zp else None
        if zp:
            return self.elem_types.get(zp)
        out_dtype = next((a.i for a in qdq.attribute if a.name == "output_dtype"), 0)
        return out_dtype or TensorProto.UINT8

    def axis(self, qdq: onnx.NodeProto, rank: int) -> int:
        axis = next((int(a.i) for a in qdq.attribute if a.name == "axis"), 1)
        return axis + rank if axis < 0 else axis

    def quantized_conv(self, node: onnx.NodeProto) -> bool:
        """A Conv whose weight arrives through a DequantizeLinear."""
        return node.op_type in ("Conv", "ConvTranspose") and (
            self.produced_by(self.input_at(node, 1), "DequantizeLinear") is not None
        )


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False).graph
    except Exception:  # shape inference is best effort: fall back to what the file declares
        inferred = model.graph
    out: dict[str, int] = {}
    for vi in [*inferred.value_info, *inferred.input, *inferred.output]:
        t = vi.type.tensor_type.elem_type
        if t:
            out[vi.name] = t
    return out


def type_name(t: int | None) -> str:
    if not t:
        return "unknown"
    try:
        return TensorProto.DataType.Name(t)
    except ValueError:
        return str(t)
