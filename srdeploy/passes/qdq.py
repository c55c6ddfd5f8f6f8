"""Insert Q/DQ nodes for one profile and precision tier of a plan.

Quantized conv weights (already the deployed float values: passes/weights.py) become integer
initializers (same name as the PyTorch parameter) behind a per-channel DequantizeLinear (axis 0);
each activation site of the tier gets QuantizeLinear -> DequantizeLinear on the edge into its
consumer, in the profile's integer container, preceded by a Clip when the site's grid is narrower
than that container (sub-8-bit emulation). Which sites exist is the plan's business (calib/site_plan.py);
a ReLU behind an output Q/DQ whose grid already clamps at zero is bypassed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from srdeploy.errors import RewriteError
from srdeploy.passes.base import PassResult
from srdeploy.profiles import get_profile
from srdeploy.quant import sites
from srdeploy.quant.plan import QuantPlan
from srdeploy.quant.spec import QuantSpec


@dataclass(frozen=True)
class QDQOptions:
    profile: str
    tier: int


def needs_clip(spec: QuantSpec, container: type) -> bool:
    info = np.iinfo(container)
    return spec.qmin > info.min or spec.qmax < info.max


def _const(name: str, value: np.ndarray) -> gs.Constant:
    # np.ascontiguousarray would turn 0-d scales into shape (1,), which ORT will not fuse as per-tensor.
    return gs.Constant(name, np.array(value, copy=True, order="C"))


class _Builder:
    def __init__(self, graph: gs.Graph, result: PassResult) -> None:
        self.graph = graph
        self.result = result
        self.tensors = graph.tensors()

    def unique(self, name: str) -> str:
        base, i = name, 1
        while name in self.tensors:
            name = f"{base}_{i}"
            i += 1
        return name

    def qdq(self, source: gs.Tensor, spec: QuantSpec, container: type, label: str) -> gs.Variable:
        """source -> [Clip] -> Q -> DQ; returns the DQ output."""
        x = source
        if needs_clip(spec, container):
            lo, hi = spec.clip_bounds()
            out = gs.Variable(self.unique(f"{label}.clipped"), dtype=np.float32)
            node = gs.Node(
                "Clip",
                name=f"{label}:Clip",
                inputs=[
                    x,
                    _const(self.unique(f"{label}.clip_min"), np.asarray(lo, np.float32).reshape(())),
                    _const(self.unique(f"{label}.clip_max"), np.asarray(hi, np.float32).reshape(())),
                ],
                outputs=[out],
            )
            self._add(node, out)
            x = out
            self.result.note("clip")
        scale = _const(self.unique(f"{label}.scale"), np.asarray(spec.scale, np.float32).reshape(()))
        zp = _const(self.unique(f"{label}.zero_point"), np.asarray(spec.zero_point).astype(container).reshape(()))
        q_out = gs.Variable(self.unique(f"{label}.quantized"), dtype=container)
        self._add(
            gs.Node("QuantizeLinear", name=f"{label}:QuantizeLinear", inputs=[x, scale, zp], outputs=[q_out]), q_out
        )
        dq_out = gs.Variable(self.unique(f"{label}.dequantized"), dtype=np.float32)
        self._add(
            gs.Node("DequantizeLinear", name=f"{label}:DequantizeLinear", inputs=[q_out, scale, zp], outputs=[dq_out]),
            dq_out,
        )
        self.result.note("activation_qdq")
        return dq_out

    def _add(self, node: gs.Node, out: gs.Tensor) -> None:
        self.graph.nodes.append(node)
        self.tensors[out.name] = out
        for t in node.inputs:
            self.tensors.setdefault(t.name, t)


def producer(t: gs.Tensor) -> gs.Node | None:
    """The node that writes ``t`` (None for constants and graph inputs)."""
    return t.inputs[0] if t.inputs else None


def constant_dq(t: gs.Tensor) -> gs.Node | None:
    """The DequantizeLinear writing ``t`` from a constant integer initializer (a quantized weight), or None."""
    dq = producer(t)
    return dq if dq is not None and dq.op == "DequantizeLinear" and isinstance(dq.inputs[0], gs.Constant) else None


def _conv_nodes(graph: gs.Graph) -> dict[str, gs.Node]:
    """Conv nodes keyed by weight name (float initializer, or integer initializer behind a DQ)."""
    out = {}
    for node in graph.nodes:
        if node.op != "Conv" or len(node.inputs) < 2:
            continue
        w = node.inputs[1]
        if isinstance(w, gs.Constant):
            out[w.name] = node
        elif (dq := constant_dq(w)) is not None:
            out[dq.inputs[0].name] = node
    return out


def quantize_weights(graph: gs.Graph, plan: QuantPlan, opts: QDQOptions, result: PassResult) -> None:
    convs = _conv_nodes(graph)
    b = _Builder(graph, result)
    profile = get_profile(opts.profile)
    # int8 (or uint8 holding q + 128) here; weights of <= 4 bits are repacked as INT4 after export when the
    # emission asks (int4.py).
    container = profile.weight_container
    offset = 0 if container is np.int8 else 128
    for layer in plan.layers:
        node = convs.get(layer.weight)
        if node is None:
            raise RewriteError(f"no Conv uses weight '{layer.weight}'", "the plan was made for another model")
        w = node.inputs[1]
        if not isinstance(w, gs.Constant):
            result.skip(layer.weight, "already quantized")
            continue
        values = np.asarray(w.values, dtype=np.float32)
        if not layer.quantized:
            result.skip(layer.weight, layer.reason)
            continue
        spec = profile.weight_spec(plan.weights[layer.weight])
        qt = _const(layer.weight, (spec.quantize(values).astype(np.int16) + offset).astype(container))
        zp = _const(f"{layer.weight}.zero_point", np.full(spec.scale.shape, offset, container))
        result.note(f"int{spec.bits}_weight")
        scale = _const(f"{layer.weight}.scale", spec.scale.astype(np.float32))
        dq_out = gs.Variable(f"{layer.weight}.dequantized", dtype=np.float32, shape=list(values.shape))
        dq = gs.Node(
            "DequantizeLinear",
            name=f"{layer.weight}:DequantizeLinear",
            inputs=[qt, scale, zp],
            outputs=[dq_out],
            attrs={"axis": 0},
        )
        graph.nodes.append(dq)
        node.inputs[1] = dq_out
        b.tensors[dq_out.name] = dq_out


def insert_activation_qdq(graph: gs.Graph, plan: QuantPlan, opts: QDQOptions, result: PassResult) -> None:
    specs: Mapping[str, QuantSpec] = plan.tier(opts.tier).sites(opts.profile)
    container_of = get_profile(opts.profile).activation_container
    convs = _conv_nodes(graph)
    b = _Builder(graph, result)
    adds = {n.name[: -len(":Add")]: n for n in graph.nodes if n.op == "Add" and n.name.endswith(":Add")}
    # One Q/DQ per (tensor, grid): consumers of the same tensor on the same grid share it.
    shared: dict[tuple[str, bytes], gs.Variable] = {}

    def grid_key(spec: QuantSpec) -> bytes:
        return repr((spec.bits, spec.signed, spec.narrow, spec.scale.tobytes(), spec.zero_point.tobytes())).encode()

    done = {n.name for n in graph.nodes if n.op == "DequantizeLinear"}
    for site_name in sorted(specs):
        spec = specs[site_name]
        key, kind = sites.parse(site_name)
        container = container_of(spec)
        label = site_name.replace("@", ".")
        if kind == sites.OUTPUT and f"{label}:DequantizeLinear" in done:
            result.skip(site_name, "already quantized")
            continue
        if kind == sites.OUTPUT:
            node = convs.get(key)
            if node is None:
                raise RewriteError(
                    f"site '{site_name}' names no Conv in the graph", "the plan was made for another model"
                )
            _quantize_output(graph, b, node, spec, container, label, result)
            continue
        # Input and skip sites quantize one edge into their consumer (conv input 0, Add input 1).
        if kind == sites.SKIP:
            node, index = adds.get(key), 1
            if node is None:
                result.skip(site_name, "no residual Add of that module in the graph")
                continue
        else:
            node, index = convs.get(key), 0
            if node is None:
                raise RewriteError(
                    f"site '{site_name}' names no Conv in the graph", "the plan was made for another model"
                )
        src = node.inputs[index]
        if _on_grid(src, spec, container):
            # Also the case when a preceding output site already put the tensor on this grid.
            result.skip(site_name, "already quantized")
            continue
        k = (src.name, grid_key(spec))
        dq = shared.get(k) or b.qdq(src, spec, container, label)
        shared[k] = dq
        node.inputs[index] = dq


def _quantize_output(
    graph: gs.Graph, b: _Builder, node: gs.Node, spec: QuantSpec, container: type, label: str, result: PassResult
) -> None:
    """conv -> Q -> DQ -> (every former consumer of the conv output)."""
    out = node.outputs[0]
    consumers = list(out.outputs)
    new_out = gs.Variable(b.unique(f"{out.name}.float"), dtype=np.float32)
    node.outputs[0] = new_out
    b.tensors[new_out.name] = new_out
    dq = b.qdq(new_out, spec, container, label)
    if out in graph.outputs:  # the network output keeps its name and shape: the DQ writes it
        dq.inputs[0].outputs[0] = out
        del b.tensors[dq.name]
        dq = out
    else:
        for c in consumers:
            for i, t in enumerate(c.inputs):
                if t is out:
                    c.inputs[i] = dq
    _drop_redundant_relu(graph, dq, spec, result)


def _on_grid(t: gs.Tensor, spec: QuantSpec, container: type) -> bool:
    """True when ``t`` is the output of Q/DQ (with the Clip the grid needs) on exactly ``spec``'s grid."""
    dq = producer(t)
    if dq is None or dq.op != "DequantizeLinear":
        return False
    q = producer(dq.inputs[0])
    scale, zp = dq.inputs[1], dq.inputs[2]
    if q is None or q.op != "QuantizeLinear" or not isinstance(scale, gs.Constant) or not isinstance(zp, gs.Constant):
        return False
    if np.asarray(zp.values).dtype != np.dtype(container):
        return False
    same = np.array_equal(np.asarray(scale.values, np.float32).reshape(-1), spec.scale.reshape(-1)) and np.array_equal(
        np.asarray(zp.values).astype(np.int32).reshape(-1), spec.zero_point.reshape(-1)
    )
    clip = producer(q.inputs[0])
    has_clip = clip is not None and clip.op == "Clip"
    if needs_clip(spec, container):
        if not has_clip:
            return False
        lo, hi = spec.clip_bounds()
        bounds = [np.asarray(c.values, np.float32) for c in clip.inputs[1:3] if isinstance(c, gs.Constant)]
        return same and len(bounds) == 2 and np.allclose(bounds[0], lo) and np.allclose(bounds[1], hi)
    return same


def _drop_redundant_relu(graph: gs.Graph, dq: gs.Variable, spec: QuantSpec, result: PassResult) -> None:
    """DQ(unsigned grid, zero point 0) -> Relu is the identity: bypass the Relu."""
    if spec.signed or int(np.max(spec.zero_point)) != 0:
        return
    for node in list(dq.outputs):
        if node.op != "Relu":
            continue
        relu_out = node.outputs[0]
        for c in list(relu_out.outputs):
            for i, t in enumerate(c.inputs):
                if t is relu_out:
                    c.inputs[i] = dq
        if relu_out in graph.outputs:
            continue
        node.outputs.clear()
        node.inputs.clear()
        result.note("relu_folded_into_quantizer")


def insert_qdq(graph: gs.Graph, plan: QuantPlan, opts: QDQOptions) -> PassResult:
    get_profile(opts.profile)  # unknown profiles fail here, with the known ones listed
    result = PassResult(f"insert_qdq[{opts.profile}, tier {opts.tier}]")
    quantize_weights(graph, plan, opts, result)
    insert_activation_qdq(graph, plan, opts, result)
    graph.cleanup().toposort()
    return result
