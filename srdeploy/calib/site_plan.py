"""Which activation sites each profile quantizes (before any range is known).

Every profile: the input of every quantized conv, and the skip input of residual Adds whose branch comes
from a quantized conv (``quant.residual_skips``: all, block = all but the network-wide skip, none).
Profiles that quantize conv outputs add each quantized conv's output (``ort``: all; ``openvino``: only those
reaching a quantized conv through DepthToSpace), except convs with fewer output channels than the profile's
minimum (but a profile with ``image_output_grid`` quantizes the network output on the fixed 8-bit image grid,
IMAGE_RANGE); an output that reaches exactly one quantized conv (directly or through Relu / DepthToSpace)
reuses that conv's input grid, so the Relu folds into the Q. Profiles without residual skips leave the Adds float.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from srdeploy.passes.graph_info import GraphInfo
from srdeploy.profiles.base import Profile
from srdeploy.quant import sites
from srdeploy.quant.plan import LayerInfo

# The network output as an 8-bit image: what saving it does (quantize_8bit in validate/metrics.py).
IMAGE_RANGE = (0.0, 1.0)


@dataclass(frozen=True)
class ProfileSites:
    sites: tuple[str, ...]
    reuse: Mapping[str, str] = field(default_factory=dict)  # output site -> consumer input site
    relu_outputs: frozenset[str] = frozenset()  # output sites calibrated on relu(output)
    fixed: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # sites with a set range (not calibrated)
    residual: frozenset[str] = frozenset()  # skip operands and the conv outputs that are residual branches


def global_residuals(graph: GraphInfo) -> set[str]:
    """Network-wide residual Adds: built-in models name them body_add / global_add."""
    return {p for p in graph.residuals if p.endswith(("body_add", "global_add"))}


def skip_sites(graph: GraphInfo, quantized: Iterable[str], residual_skips: str) -> list[str]:
    if residual_skips == "none":
        return []
    conv_outputs = {graph.convs[w].output for w in quantized if w in graph.convs}
    skip_global = residual_skips == "block"
    return [
        sites.site(path, sites.SKIP)
        for path, add in sorted(graph.residuals.items())
        if add.branch in conv_outputs and not (skip_global and path in global_residuals(graph))
    ]


def residual_sites(graph: GraphInfo, names: Iterable[str]) -> frozenset[str]:
    """Of ``names``, the sites on the residual stream: skip operands, and the output of each conv whose output
    is a residual Add's branch (an own grid, not a reused one)."""
    branches = {add.branch for add in graph.residuals.values()}
    stream = {sites.site(w, sites.OUTPUT) for w, conv in graph.convs.items() if conv.output in branches}
    return frozenset(n for n in names if sites.parse(n)[1] == sites.SKIP or n in stream)


def image_output_sites(layers: Sequence[LayerInfo], graph: GraphInfo) -> dict[str, tuple[float, float]]:
    """Output site -> IMAGE_RANGE where a quantized conv computes the network output: on that conv, or on the
    per-channel affine 1x1 conv after it (EDSR/SRResNet's inverse mean shift, folded into the conv by the
    profile's emission: passes/output_affine.py)."""
    found = {}
    for x in layers:
        image = graph.image_conv(x.weight) if x.quantized and x.weight in graph.convs else None
        if image is not None:
            found[sites.site(image, sites.OUTPUT)] = IMAGE_RANGE
    return found


def _writes_image(graph: GraphInfo, weight: str) -> bool:
    return weight in graph.convs and graph.image_conv(weight) is not None


def output_sites(
    layers: Sequence[LayerInfo], graph: GraphInfo, minimum: int, which: str = "all"
) -> tuple[list[str], dict[str, str], set[str]]:
    """``which``: "all" quantized conv outputs, or "into_movement": only those that reach one quantized conv
    through DepthToSpace (the profile's ``conv_outputs``)."""
    quantized = {x.weight for x in layers if x.quantized}
    out, reuse, relu = [], {}, set()
    for x in sorted((x for x in layers if x.quantized), key=lambda x: x.weight):
        if x.out_channels < minimum or _writes_image(graph, x.weight):
            continue  # left unfused on purpose (see the profile's note); the network output: image_output_sites
        site = sites.site(x.weight, sites.OUTPUT)
        through_relu, consumers = graph.relu_chain_consumers(x.weight)
        feeds_one = len(consumers) == 1 and consumers[0] in quantized
        if which == "into_movement" and not (feeds_one and graph.reaches_through(x.weight, "DepthToSpace")):
            continue
        out.append(site)
        if feeds_one:
            reuse[site] = sites.site(consumers[0], sites.INPUT)
        elif through_relu or graph.output_only_relu(x.weight):
            relu.add(site)
    return out, reuse, relu


def plan_sites(
    layers: Sequence[LayerInfo], graph: GraphInfo, profiles: Sequence[Profile], residual_skips: str
) -> dict[str, ProfileSites]:
    quantized = sorted(x.weight for x in layers if x.quantized)
    inputs = [sites.site(w, sites.INPUT) for w in quantized]
    skips = skip_sites(graph, quantized, residual_skips)
    result = {}
    for profile in profiles:
        names, reuse, relu = list(inputs) + (skips if profile.residual_skips else []), {}, set()
        if profile.conv_outputs != "none":
            outs, reuse, relu = output_sites(layers, graph, profile.min_output_channels, profile.conv_outputs)
            names += outs
        fixed = image_output_sites(layers, graph) if profile.image_output_grid else {}
        names += list(fixed)
        own = [n for n in names if n not in reuse and n not in fixed]
        result[profile.name] = ProfileSites(
            tuple(sorted(names)), reuse, frozenset(relu), fixed, residual_sites(graph, own)
        )
    return result
