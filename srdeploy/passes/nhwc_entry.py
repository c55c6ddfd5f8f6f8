"""Start the integer residual stream in ONNX Runtime's NHWC layout (profiles with ``nhwc_entry``).

ONNX Runtime runs fused QLinearConv in NHWC and wraps each one in layout Transposes, then pushes Transposes
through the ops between them. Its push is greedy: a QLinearAdd whose skip input comes from a float op (the
head conv of EDSR or SRResNet left float, feeding the first residual block) sees one NHWC input and one NCHW
input and keeps both Transposes, and so does every later block, whose skip is the previous QLinearAdd: 2
Transposes of the full feature map per residual block (38 in the optimized EDSR-baseline x4 graph).

This pass re-emits such a Q's integer tensor through an identity 1x1 convolution (integer weights 1, scale 1,
no bias, output Q on the same scale and zero point) and feeds every consumer from that. ONNX Runtime fuses it
into a QLinearConv, so the stream starts in NHWC and the Transposes cancel along it. The identity is exact:
each output is ``round((q - z) * 1 * s / s) + z = q``, and a pair of products never exceeds 255 (no 16-bit
saturation on AVX2-only CPUs). Measured on an AMD EPYC with AVX-512 VNNI, ONNX Runtime 1.32.0, 2 threads,
the EDSR-baseline x4 W8A8 ``ort`` graph at 256x256 LR: 38 -> 6 Transposes after ONNX Runtime's optimization,
output bit-identical, 255 -> 230 ms (ad-hoc script, median of 6 interleaved rounds of 3 runs); tools/bench_cpu.py
has both graphs side by side in docs/BENCHMARKS.md.

Matched: a QuantizeLinear whose input comes from a float op (not from an op ONNX Runtime runs on integers,
whose output is NHWC or follows the stream already) and whose integer tensor is dequantized both into a conv
and into an Add.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from srdeploy.passes.base import PassResult
from srdeploy.passes.qdq import constant_dq, producer

SUFFIX = ".nhwc_entry"  # the entry's node and initializer names: <Q's module path>.nhwc_entry...


def is_entry_node(name: str) -> bool:
    """A node this pass added (not one of the plan's convs), also under ONNX Runtime's optimized names."""
    return f"{SUFFIX}:" in name


def _dq_users(t: gs.Tensor) -> list[gs.Node]:
    return [u for u in t.outputs if u.op == "DequantizeLinear"]


def _fused_conv(node: gs.Node | None) -> bool:
    """A Conv ONNX Runtime fuses into QLinearConv: dequantized data input and constant dequantized weights."""
    if node is None or node.op != "Conv" or len(node.inputs) < 2:
        return False
    data = producer(node.inputs[0])
    return data is not None and data.op == "DequantizeLinear" and constant_dq(node.inputs[1]) is not None


def _integer_op(node: gs.Node | None) -> bool:
    """An op ONNX Runtime runs on the integer tensor (QLinearConv, QLinearAdd...): every variable input is
    dequantized."""
    if node is None:
        return False
    data = [t for t in node.inputs if not isinstance(t, gs.Constant)]
    return bool(data) and all((p := producer(t)) is not None and p.op == "DequantizeLinear" for t in data)


def _entry_channels(q: gs.Node) -> int | None:
    """Channel count of a Q that enters the integer stream (None when the pattern does not match)."""
    source = producer(q.inputs[0])
    if source is not None and (source.op == "DequantizeLinear" or _integer_op(source)):  # a requantization, or
        return None  # an integer op's output: ORT has the tensor in its integer layout already
    readers = [r for dq in _dq_users(q.outputs[0]) for r in dq.outputs[0].outputs]
    convs = [r for r in readers if _fused_conv(r) and r.attrs.get("group", 1) == 1]
    if not convs or not any(r.op == "Add" for r in readers):
        return None
    return int(constant_dq(convs[0].inputs[1]).inputs[0].values.shape[1])  # type: ignore[union-attr]


def _identity_weights(name: str, channels: int, container: type, scale_dtype: type) -> gs.Node:
    """DequantizeLinear of an identity (C, C, 1, 1) weight: integer 1 per channel (uint8: 129, zero point 128)."""
    offset = 128 if container == np.uint8 else 0
    q = np.full((channels, channels, 1, 1), offset, container)
    q[np.arange(channels), np.arange(channels)] = offset + 1
    inputs = [
        gs.Constant(f"{name}.weight", q),
        gs.Constant(f"{name}.weight.scale", np.ones(channels, scale_dtype)),
        gs.Constant(f"{name}.weight.zero_point", np.full(channels, offset, container)),
    ]
    out = gs.Variable(f"{name}.weight.dequantized", dtype=scale_dtype)
    return gs.Node("DequantizeLinear", f"{name}.weight:DequantizeLinear", {"axis": 0}, inputs, [out])


def nhwc_entry(graph: gs.Graph, weight_container: type = np.int8) -> PassResult:
    result = PassResult("nhwc_entry")
    for q in [n for n in graph.nodes if n.op == "QuantizeLinear"]:
        channels = _entry_channels(q)
        if channels is None:
            continue
        name = q.name.rsplit(":", 1)[0] + SUFFIX
        scale, zero = q.inputs[1], q.inputs[2]
        scale_dtype = np.asarray(scale.values).dtype.type
        stream = q.outputs[0]
        readers = list(stream.outputs)
        x = gs.Variable(f"{name}.input", dtype=scale_dtype)
        y = gs.Variable(f"{name}.output", dtype=scale_dtype)
        out = gs.Variable(f"{name}.quantized", dtype=stream.dtype)
        w = _identity_weights(name, channels, weight_container, scale_dtype)
        graph.nodes += [
            gs.Node("DequantizeLinear", f"{name}:DequantizeLinear", inputs=[stream, scale, zero], outputs=[x]),
            w,
            gs.Node("Conv", f"{name}:Conv", {"kernel_shape": [1, 1]}, [x, w.outputs[0]], [y]),
            gs.Node("QuantizeLinear", f"{name}:QuantizeLinear", inputs=[y, scale, zero], outputs=[out]),
        ]
        for r in readers:
            for i, t in enumerate(r.inputs):
                if t is stream:
                    r.inputs[i] = out
        result.note(f"{q.name}: {channels} channels re-emitted through an identity QLinearConv")
    graph.cleanup().toposort()
    return result
