"""DAQ made static: per-channel ranges folded into the convs (channel equalization).

DAQ normalises every channel by its own statistics at run time; TensorRT activations must be
per-tensor. The static form rescales channel c of a tensor by 1/t_c (dividing the producing
convs' output rows) and multiplies the consuming convs' input columns by t_c: the float function
is unchanged, and one per-tensor grid then covers every channel's DAQ range (mean +- k(b) sigma).
The scales are plan data (QuantPlan.equalization), applied by apply_plan; the model and fp32.onnx
stay as trained.

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
from dataclasses import dataclass

import numpy as np
import onnx

from srdeploy.calib.observers import SiteStats
from srdeploy.calib.ranges import DAQ_SIGMA_CLIP
from srdeploy.quant import sites
from srdeploy.quant.plan import ChannelGroup

PASS_THROUGH = ("Relu", "PRelu", "LeakyRelu", "Add")


@dataclass(frozen=True)
class Group:
    """A set of tensors joined by pass-through ops, with the plain convs that produce and consume it."""

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


def equalization_groups(
    model_proto: onnx.ModelProto,
    stats: Mapping[str, SiteStats],
    quantized: set[str],
    bits: Mapping[str, int],
    strength: float = 1.0,
) -> tuple[tuple[ChannelGroup, ...], dict]:
    """The plan's equalization: one ChannelGroup per group that feeds a quantized conv, and a report."""
    groups, skipped = find_groups(model_proto)
    out: list[ChannelGroup] = []
    report: dict = dict(groups=[], skipped=skipped)
    for group in groups:
        if not set(group.consumers) & quantized:
            continue
        t = channel_scales(group, stats, bits, strength)
        if t is None:
            continue
        out.append(ChannelGroup(group.producers, group.consumers, t))
        report["groups"].append(
            dict(
                producers=list(group.producers),
                consumers=list(group.consumers),
                channels=int(t.size),
                spread=float(t.max() / t.min()),
            )
        )
    return tuple(out), report
