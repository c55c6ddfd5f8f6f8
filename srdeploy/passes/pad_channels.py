"""Pad narrow integer convolutions with zero filters (profiles with ``pad_output_channels``).

ONNX Runtime fuses DQ -> Conv -> Q into QLinearConv, but its int8 kernels are slow on convolutions with few
output channels, such as the RGB conv that writes the network output (the only conv this pass changes).
Measured on an AMD EPYC with AVX-512 VNNI, 2 threads, 64 -> 3 channels at 512 x 512: a 3x3 QLinearConv took
38 ms with 3 output channels and 26.5 ms padded to 16 (float Conv: 42 ms); 9x9: 179 ms vs 63 ms (float
154 ms); not measured on AVX2-only CPUs. So that conv, when it has fewer output channels than the profile's
minimum, is emitted with zero filters (weight 0, scale 1, bias 0) up to that many, and a Slice takes the
real channels back on the integer tensor, before its DequantizeLinear. The real channels compute the same.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from srdeploy.passes.base import PassResult
from srdeploy.passes.qdq import producer


def _slice_bounds(channels: int) -> tuple[tuple[str, int], ...]:
    return (("starts", 0), ("ends", channels), ("axes", 1))


def _const_dq(t: gs.Tensor) -> gs.Node | None:
    """The DequantizeLinear producing ``t`` from constant integer data, scale and zero point."""
    dq = producer(t)
    if dq is None or dq.op != "DequantizeLinear" or not all(isinstance(x, gs.Constant) for x in dq.inputs):
        return None
    return dq


def _padded(values: np.ndarray, n: int, fill: float) -> np.ndarray:
    values = np.asarray(values)
    extra = np.full((n - values.shape[0], *values.shape[1:]), fill, dtype=values.dtype)
    return np.concatenate([values, extra], axis=0)


def _pad_dq(dq: gs.Node, n: int) -> None:
    """Pad the DQ's data, scale and zero point; the constants keep their names (the plan's weight names). The
    padded data sit at the zero point (uint8 weights: 128), so the padded filters are zero."""
    zero = np.asarray(dq.inputs[2].values).reshape(-1)[0]
    for i, fill in enumerate((zero, 1.0, zero)):
        dq.inputs[i] = gs.Constant(dq.inputs[i].name, _padded(dq.inputs[i].values, n, fill))


def _writes_graph_output(q: gs.Node, graph_outputs: list[gs.Tensor]) -> bool:
    """Q -> DQ [-> DepthToSpace ...] -> graph output (the network's image, shuffled last after the sub-pixel
    fold, models/subpixel_fold.py): the one conv this pass is measured for."""
    users = q.outputs[0].outputs
    if len(users) != 1 or users[0].op != "DequantizeLinear":
        return False
    t = users[0].outputs[0]
    while t not in graph_outputs:
        if len(t.outputs) != 1 or t.outputs[0].op != "DepthToSpace":
            return False
        t = t.outputs[0].outputs[0]
    return not t.outputs


def _narrow_int_conv(node: gs.Node, minimum: int, graph_outputs: list[gs.Tensor]) -> tuple[gs.Node, gs.Node] | None:
    """(weight DQ, output Q) of a per-channel integer conv writing the network output, with fewer than
    ``minimum`` output channels and a constant bias (float, or DQ of int32)."""
    if node.op != "Conv" or len(node.outputs[0].outputs) != 1 or node.attrs.get("group", 1) != 1:
        return None
    q = node.outputs[0].outputs[0]
    w_dq = _const_dq(node.inputs[1])
    if q.op != "QuantizeLinear" or w_dq is None or not _writes_graph_output(q, graph_outputs):
        return None
    channels = w_dq.inputs[0].values.shape[0]
    if channels >= minimum or np.asarray(w_dq.inputs[1].values).size != channels:
        return None
    if len(node.inputs) > 2 and not (isinstance(node.inputs[2], gs.Constant) or _const_dq(node.inputs[2])):
        return None
    return w_dq, q


def _pad_bias(node: gs.Node, n: int) -> None:
    if len(node.inputs) < 3:
        return
    bias = node.inputs[2]
    if isinstance(bias, gs.Constant):
        node.inputs[2] = gs.Constant(bias.name, _padded(bias.values, n, 0))
    else:
        _pad_dq(producer(bias), n)  # type: ignore[arg-type]


def pad_output_channels(graph: gs.Graph, minimum: int) -> PassResult:
    result = PassResult(f"pad_output_channels[{minimum}]")
    for node in list(graph.nodes):
        found = _narrow_int_conv(node, minimum, graph.outputs)
        if found is None:
            continue
        w_dq, q = found
        channels = w_dq.inputs[0].values.shape[0]
        _pad_dq(w_dq, minimum)
        _pad_bias(node, minimum)
        node.outputs[0].shape = None  # the float conv output is wider now
        wide = gs.Variable(f"{q.outputs[0].name}.padded", dtype=q.outputs[0].dtype)
        real = q.outputs[0]
        q.outputs[0] = wide
        bounds = [gs.Constant(f"{node.name}.slice.{k}", np.array([v], np.int64)) for k, v in _slice_bounds(channels)]
        graph.nodes.append(gs.Node("Slice", f"{node.name}:SliceChannels", inputs=[wide, *bounds], outputs=[real]))
        result.note(f"{node.name}: {channels} -> {minimum} output channels (zero filters), sliced back")
    graph.cleanup().toposort()
    return result
