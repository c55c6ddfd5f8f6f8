"""DAQ made static: per-channel ranges folded into the convs (channel equalization).

DAQ normalises every channel by its own statistics at run time; TensorRT activations must be
per-tensor. The static form rescales channel c of a tensor by 1/t_c (dividing the producing
convs' output rows) and multiplies the consuming convs' input columns by t_c: the float function
is unchanged, and one per-tensor grid then covers every channel's DAQ range (mean +- k(b) sigma).

Scales pass through ReLU/PReLU/LeakyRelu (positively homogeneous) and Add (both branches and the
sum share t), so a group is a set of tensors joined by those ops; it can be equalized when every
producer and consumer outside the group is a plain Conv. In EDSR that covers each block's
conv1 -> ReLU -> conv2 and the whole residual stream (head, every block, the body conv, the first
upsampler conv). Departures from dynamic DAQ: statistics come from the calibration set, not the
image at hand; means are not subtracted (offsets cannot pass a ReLU, and folding them into biases
breaks at zero-padded borders); one t per channel is shared by all sites of a group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from srdeploy.calib.observers import SiteStats
from srdeploy.calib.ranges import DAQ_SIGMA_CLIP
from srdeploy.quant import sites

PASS_THROUGH = ("Relu", "PRelu", "LeakyRelu", "Add")


@dataclass(frozen=True)
class Group:
    tensors: tuple[str, ...]
    producers: tuple[str, ...]  # conv weight names whose output rows are divided by t
    consumers: tuple[str, ...]  # conv weight names whose input columns are multiplied by t


def find_groups(model: onnx.ModelProto) -> tuple[list[Group], list[str]]:
    """Equalizable groups, and reasons for groups that are not."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        parent[find(a)] = find(b)

    for node in g.node:
        if node.op_type in PASS_THROUGH:
            data_in = [t for t in node.input[: 2 if node.op_type == "Add" else 1] if t and t not in inits]
            for t in data_in:
                union(t, node.output[0])
    members: dict[str, list[str]] = {}
    for t in list(parent):
        members.setdefault(find(t), []).append(t)
    graph_io = {i.name for i in g.input} | {o.name for o in g.output}
    groups, skipped = [], []
    for tensors in members.values():
        tset = set(tensors)
        producers, consumers, ok, why = [], [], True, ""
        for node in g.node:
            passes = node.op_type in PASS_THROUGH
            if node.output and node.output[0] in tset and not passes:
                if _plain_conv(node, inits):
                    producers.append(node.input[1])
                else:
                    ok, why = False, f"produced by {node.op_type} {node.name}"
            for i, t in enumerate(node.input):
                if t in tset and not passes:
                    if node.op_type == "Conv" and i == 0 and _plain_conv(node, inits):
                        consumers.append(node.input[1])
                    else:
                        ok, why = False, f"consumed by {node.op_type} {node.name}"
        if tset & graph_io:
            ok, why = False, "touches the graph input/output"
        if ok and producers and consumers:
            groups.append(Group(tuple(sorted(tset)), tuple(sorted(set(producers))), tuple(sorted(set(consumers)))))
        elif not ok:
            skipped.append(f"{sorted(tset)[0]} (+{len(tset) - 1} tensors): {why}")
    groups.sort(key=lambda x: x.tensors)
    return groups, skipped


def _plain_conv(node: onnx.NodeProto, inits: Mapping[str, onnx.TensorProto]) -> bool:
    if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in inits:
        return False
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    return group == 1


def channel_scales(
    group: Group, stats: Mapping[str, SiteStats], bits: Mapping[str, int], strength: float
) -> np.ndarray | None:
    """t_c: geometric mean over the group's quantized sites of each channel's DAQ half-range."""
    widths = []
    for w in group.consumers:
        st = stats.get(sites.site(w, sites.INPUT))
        if st is None:
            continue
        k = DAQ_SIGMA_CLIP[bits.get(w, 8)]
        lo = np.maximum(st.ch_mean - k * st.ch_std, st.ch_min)
        hi = np.minimum(st.ch_mean + k * st.ch_std, st.ch_max)
        widths.append(np.maximum(np.abs(lo), np.abs(hi)))
    if not widths:
        return None
    w = np.exp(np.mean(np.log(np.maximum(np.stack(widths), 1e-12)), axis=0))
    floor = 1e-3 * float(w.max())  # dead channels: do not blow their weights up
    w = np.maximum(w, floor)
    t = (w / np.exp(np.mean(np.log(w)))) ** strength
    return t.astype(np.float32)


def apply_scales(module: torch.nn.Module, group: Group, t: np.ndarray) -> None:
    params = dict(module.named_parameters())
    tt = torch.from_numpy(t)
    with torch.no_grad():
        for w in group.producers:
            params[w].div_(tt.view(-1, 1, 1, 1))
            bias = params.get(w[: -len("weight")] + "bias")
            if bias is not None:
                bias.div_(tt)
        for w in group.consumers:
            params[w].mul_(tt.view(1, -1, 1, 1))
        # PReLU slopes are per channel but scale-free: nothing to change.


def equalize(
    module: torch.nn.Module,
    model_proto: onnx.ModelProto,
    stats: Mapping[str, SiteStats],
    quantized: set[str],
    bits: Mapping[str, int],
    strength: float = 1.0,
    masks: dict | None = None,
) -> dict:
    """Equalize every group that feeds a quantized conv; returns a report. Corrected biases kept
    in ``masks`` (bias correction after pruning) are rescaled with their convs."""
    groups, skipped = find_groups(model_proto)
    report = dict(groups=[], skipped=skipped)
    for group in groups:
        if not set(group.consumers) & quantized:
            continue
        t = channel_scales(group, {k: v for k, v in stats.items()}, bits, strength)
        if t is None:
            continue
        apply_scales(module, group, t)
        if masks:
            rescale_masks(masks, group, t)
        report["groups"].append(
            dict(
                producers=list(group.producers),
                consumers=list(group.consumers),
                channels=int(t.size),
                spread=float(t.max() / t.min()),
            )
        )
    return report


def refresh_initializers(model_proto: onnx.ModelProto, module: torch.nn.Module) -> int:
    """Copy the module's current parameters into same-named initializers; returns how many."""
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    n = 0
    for i, init in enumerate(model_proto.graph.initializer):
        if init.name in state:
            value = state[init.name].astype(numpy_helper.to_array(init).dtype)
            model_proto.graph.initializer[i].CopyFrom(numpy_helper.from_array(value, init.name))
            n += 1
    return n


def rescale_masks(masks: dict, group: Group, t: np.ndarray) -> None:
    """Re-fitted weights and biases kept in the plan's masks follow their convs' rescaling."""
    for w in group.producers:
        if w in masks:
            m = masks[w]
            masks[w] = replace(
                m,
                bias=None if m.bias is None else (m.bias / t).astype(np.float32),
                weight=None if m.weight is None else (m.weight / t.reshape(-1, 1, 1, 1)).astype(np.float32),
            )
    for w in group.consumers:
        if w in masks and masks[w].weight is not None:
            masks[w] = replace(masks[w], weight=(masks[w].weight * t.reshape(1, -1, 1, 1)).astype(np.float32))
