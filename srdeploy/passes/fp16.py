"""Float regions to FP16 for TensorRT 11's strongly typed networks (no precision flags: ops run
in the type the ONNX gives them). The interface stays float32: Cast after the input and before
the output. Q/DQ scales become FP16 too (opset >= 19), so DequantizeLinear yields FP16."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from srdeploy.passes.base import PassResult

# Inputs that ONNX requires to stay float32 whatever the data type: Resize roi/scales.
_KEEP_FP32_INPUTS = {"Resize": (1, 2)}
CAST_IN, CAST_OUT = "input:Cast", "output:Cast"


def to_fp16(graph: gs.Graph) -> PassResult:
    result = PassResult("to_fp16")
    if any(n.name == CAST_IN for n in graph.nodes):
        result.skip("graph", "already FP16")
        return result
    keep = set()
    for node in graph.nodes:
        for i in _KEEP_FP32_INPUTS.get(node.op, ()):
            if i < len(node.inputs):
                keep.add(node.inputs[i].name)
    for name, t in sorted(graph.tensors().items()):
        if name in keep:
            continue
        if isinstance(t, gs.Constant):
            if t.values.dtype == np.float32:
                t.values = t.values.astype(np.float16)
                result.note("fp16_constant")
        elif t.dtype == np.float32 and t not in graph.inputs and t not in graph.outputs:
            t.dtype = np.float16
            result.note("fp16_tensor")
    for node in graph.nodes:
        if node.op == "Cast" and node.attrs.get("to") == onnx.TensorProto.FLOAT:
            node.attrs["to"] = onnx.TensorProto.FLOAT16
            result.note("cast_retargeted")
    for gi, inp in enumerate(graph.inputs):
        if inp.dtype == np.float32:
            half = _rename_uses(graph, inp, f"{inp.name}.fp16", consumers_only=True)
            _cast(graph, inp, half, CAST_IN if gi == 0 else f"{inp.name}:Cast", onnx.TensorProto.FLOAT16)
            result.note("input_cast")
    for go, out in enumerate(list(graph.outputs)):
        if out.dtype == np.float32:
            half = _rename_uses(graph, out, f"{out.name}.fp16", consumers_only=False)
            _cast(graph, half, out, CAST_OUT if go == 0 else f"{out.name}:Cast", onnx.TensorProto.FLOAT)
            result.note("output_cast")
    graph.cleanup().toposort()
    return result


def _rename_uses(graph: gs.Graph, t: gs.Variable, name: str, consumers_only: bool) -> gs.Variable:
    """A new FP16 tensor that takes ``t``'s place for its consumers (and producer, for outputs)."""
    half = gs.Variable(name, dtype=np.float16, shape=t.shape)
    if not consumers_only:
        producer = t.inputs[0]
        for i, o in enumerate(producer.outputs):
            if o is t:
                producer.outputs[i] = half
    for node in list(graph.nodes):
        for i, x in enumerate(node.inputs):
            if x is t:
                node.inputs[i] = half
    return half


def _cast(graph: gs.Graph, src: gs.Tensor, dst: gs.Tensor, name: str, to: int) -> None:
    graph.nodes.append(gs.Node("Cast", name=name, inputs=[src], outputs=[dst], attrs={"to": to}))
