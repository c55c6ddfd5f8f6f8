"""Fold a per-channel affine 1x1 conv into the integer conv before it (profiles with ``image_output_grid``).

EDSR and SRResNet end with ``output conv -> add_mean``: a 1x1 conv with diagonal weight a (1/255 here) and
bias c (the RGB mean) that writes the network output. With the image's output Q placed after add_mean
(calib/site_plan.py), ``DQ(w; s) -> Conv(b) -> Conv(a, c) -> Q`` is rewritten as ``DQ(w; s*a) ->
Conv(a*b + c) -> Q``, the same function: ONNX Runtime then fuses the output conv into one QLinearConv whose
output is the image on its 8-bit grid, and the float 1x1 conv at HR size is gone. The plan's weight name and
integer weights stay; only the per-channel scales (float32 here) and the float bias change. Graphs of other
profiles, the float tier and fp32.onnx keep add_mean as it is.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from srdeploy.passes.base import PassResult
from srdeploy.passes.graph_info import positive_diagonal
from srdeploy.passes.qdq import producer


def _affine(node: gs.Node) -> tuple[np.ndarray, np.ndarray] | None:
    """(a, c) when ``node`` is a 1x1 Conv with constant positive diagonal weight and constant (or no) bias."""
    if node.op != "Conv" or node.attrs.get("group", 1) != 1 or not isinstance(node.inputs[1], gs.Constant):
        return None
    a = positive_diagonal(node.inputs[1].values)
    if a is None:
        return None
    if len(node.inputs) > 2 and not isinstance(node.inputs[2], gs.Constant):
        return None
    c = np.asarray(node.inputs[2].values, np.float64) if len(node.inputs) > 2 else np.zeros(len(a))
    return a, c


def _integer_conv(t: gs.Tensor) -> gs.Node | None:
    """The Conv producing ``t`` (its only use) from per-channel DQ weights and a constant float bias or none."""
    conv = producer(t)
    if conv is None or conv.op != "Conv" or len(t.outputs) != 1:
        return None
    dq = producer(conv.inputs[1])
    if dq is None or dq.op != "DequantizeLinear" or not isinstance(dq.inputs[1], gs.Constant):
        return None
    if len(conv.inputs) > 2 and not isinstance(conv.inputs[2], gs.Constant):
        return None
    return conv


def fold_output_affine(graph: gs.Graph) -> PassResult:
    result = PassResult("fold_output_affine")
    for node in list(graph.nodes):
        affine = _affine(node)
        conv = _integer_conv(node.inputs[0]) if affine is not None else None
        users = node.outputs[0].outputs if conv is not None else []
        if conv is None or len(users) != 1 or users[0].op != "QuantizeLinear":
            continue
        a, c = affine  # type: ignore[misc]
        dq = conv.inputs[1].inputs[0]
        scale = np.asarray(dq.inputs[1].values, np.float64).reshape(-1)
        if scale.size != a.size:
            continue
        dq.inputs[1] = gs.Constant(dq.inputs[1].name, (scale * a).astype(np.float32))
        bias = np.asarray(conv.inputs[2].values, np.float64) if len(conv.inputs) > 2 else np.zeros(a.size)
        new_bias = gs.Constant(f"{conv.name}.bias.with_affine", (a * bias + c).astype(np.float32))
        if len(conv.inputs) > 2:
            conv.inputs[2] = new_bias
        else:
            conv.inputs.append(new_bias)
        out = node.outputs[0]
        node.outputs.clear()
        conv.outputs[0] = out
        result.note("affine_folded_into_conv")
    graph.cleanup().toposort()
    return result
