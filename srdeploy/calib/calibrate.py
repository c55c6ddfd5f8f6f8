"""Calibration flow: statistics -> ranges -> bits -> QuantPlan.

Which sites exist per profile (METHODS.md §4):
- ``trt``: every quantized conv's input; the skip input of residual Adds whose branch comes from a
  quantized conv (so TensorRT fuses conv+add). Signed symmetric grids, or unsigned zero-point-0
  grids for non-negative tensors below 8 bit (they still fit an int8 container).
- ``ort``: every quantized conv's input and output (ONNX Runtime fuses DQ-Conv-Q into
  QLinearConv) and the same residual skips (so DQ-Add-Q fuses into QLinearAdd and the body stays
  in int8 NHWC without transposes); uint8 asymmetric grids. A conv output that reaches only
  quantized convs (directly or through one ReLU) reuses the consumer's input grid at 8 bit, so
  the ReLU folds into the Q.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from srdeploy.calib.bits import BitAllocation
from srdeploy.calib.config import QuantConfig
from srdeploy.calib.observers import SiteStats
from srdeploy.calib.ranges import RANGE_METHODS, weight_absmax
from srdeploy.models.base import SRModel
from srdeploy.passes.graph_info import GraphInfo
from srdeploy.quant import sites
from srdeploy.quant.plan import LayerInfo, NMMask, QuantPlan, Selector, Tier
from srdeploy.quant.spec import QuantSpec, symmetric_spec, unsigned_spec

Ranges = dict[tuple[str, str], tuple[float, float]]  # (profile, site) -> (lo, hi)

# ONNX Runtime's NHWC QLinearConv is ~7x slower than its float conv for an RGB output layer
# (measured: EDSR x4 tail, 64->3 channels at 1024x1024: 929 ms vs 136 ms); such convs get no
# output Q, so they stay DQ -> Conv (float compute on quantized input and weights).
MIN_ORT_OUTPUT_CHANNELS = 4


@dataclass(frozen=True)
class SitePlan:
    """Which sites each profile quantizes, and at what bits (before ranges are known)."""

    trt: tuple[str, ...]
    ort: tuple[str, ...]
    ort_reuse: Mapping[str, str]  # ort output site -> consumer input site whose grid it reuses
    ort_relu_outputs: frozenset[str]  # ort output sites calibrated on relu(output)


def plan_sites(layers: tuple[LayerInfo, ...], graph: GraphInfo, cfg: QuantConfig) -> SitePlan:
    quantized = {x.weight for x in layers if x.quantized}
    trt: list[str] = [sites.site(w, sites.INPUT) for w in sorted(quantized)]
    ort: list[str] = list(trt)
    reuse: dict[str, str] = {}
    relu_out: set[str] = set()
    by_weight = {x.weight: x for x in layers}
    for w in sorted(quantized):
        if by_weight[w].out_channels < MIN_ORT_OUTPUT_CHANNELS:
            continue  # left unfused on purpose: ORT's int8 conv is far slower than float for these
        out_site = sites.site(w, sites.OUTPUT)
        ort.append(out_site)
        through_relu, consumers = graph.relu_chain_consumers(w)
        if len(consumers) == 1 and consumers[0] in quantized:
            reuse[out_site] = sites.site(consumers[0], sites.INPUT)
        elif through_relu or graph.output_only_relu(w):
            relu_out.add(out_site)
    if cfg.residual_skips != "none":
        conv_outputs = {graph.convs[w].output: w for w in quantized if w in graph.convs}
        for path, add in sorted(graph.residuals.items()):
            if add.branch not in conv_outputs:
                continue
            if cfg.residual_skips == "block" and path in _global_paths(graph):
                continue
            trt.append(sites.site(path, sites.SKIP))
            ort.append(sites.site(path, sites.SKIP))
    return SitePlan(tuple(sorted(trt)), tuple(sorted(ort)), reuse, frozenset(relu_out))


def _global_paths(graph: GraphInfo) -> set[str]:
    # The last residual Add of the graph in topological order is the network-wide one when the
    # model names none explicitly; built-in models name it (body_add / global_add).
    return {p for p in graph.residuals if p.endswith(("body_add", "global_add"))}


def grid_for(profile: str, stats: SiteStats, bits: int, relu_output: bool = False) -> str:
    if profile == "ort":
        return "asymmetric"
    if (stats.nonnegative or relu_output) and bits <= 7:
        return "unsigned_zero"
    return "symmetric"


def spec_from_range(lo: float, hi: float, bits: int, grid: str) -> QuantSpec:
    if grid == "symmetric":
        return symmetric_spec(max(abs(lo), abs(hi)), bits, lo=lo, hi=hi)
    if grid == "unsigned_zero":
        return unsigned_spec(0.0, hi, bits)
    return unsigned_spec(lo, hi, bits)


def site_bits(
    site_name: str, layers: Mapping[str, LayerInfo], alloc: BitAllocation, tier: int, cfg: QuantConfig
) -> int:
    key, kind = sites.parse(site_name)
    if kind == sites.SKIP:
        return cfg.skip_bits
    if kind == sites.OUTPUT:
        return 8
    layer = layers[key]
    return alloc.bits(key, tier) if layer.role == "body" else 8


def estimate_ranges(
    stats: Mapping[str, SiteStats],
    site_plan: SitePlan,
    layers: Mapping[str, LayerInfo],
    alloc: BitAllocation,
    cfg: QuantConfig,
) -> Ranges:
    """Ranges per profile and site, fitted at each site's default-tier bit-width (AdaBM shares
    one range across tiers; bit-aware clipping uses the base + layer offset bits)."""
    fn = RANGE_METHODS[cfg.range_method]
    options: dict[str, Any] = dict(percentile=cfg.percentile, ema_init=cfg.method == "adabm")
    tier = alloc.default_tier
    out: Ranges = {}
    for profile, names in (("trt", site_plan.trt), ("ort", site_plan.ort)):
        for name in names:
            if profile == "ort" and name in site_plan.ort_reuse:
                continue
            st = stats[name]
            bits = site_bits(name, layers, alloc, tier, cfg)
            relu = name in site_plan.ort_relu_outputs
            grid = grid_for(profile, st, bits, relu)
            lo, hi = fn(st, bits, grid, options)
            if relu:
                lo = 0.0
            out[(profile, name)] = (float(lo), float(hi))
    return out


def make_tiers(
    ranges: Ranges,
    stats: Mapping[str, SiteStats],
    site_plan: SitePlan,
    layers: Mapping[str, LayerInfo],
    alloc: BitAllocation,
    cfg: QuantConfig,
) -> tuple[Tier, ...]:
    tiers = []
    for t, offset in enumerate(alloc.tier_offsets):
        acts: dict[str, dict[str, QuantSpec]] = {"trt": {}, "ort": {}}
        for profile, names in (("trt", site_plan.trt), ("ort", site_plan.ort)):
            for name in names:
                if profile == "ort" and name in site_plan.ort_reuse:
                    continue
                bits = site_bits(name, layers, alloc, t, cfg)
                lo, hi = ranges[(profile, name)]
                grid = grid_for(profile, stats[name], bits, name in site_plan.ort_relu_outputs)
                acts[profile][name] = spec_from_range(lo, hi, bits, grid)
        for out_site, in_site in site_plan.ort_reuse.items():
            src = acts["ort"][in_site]
            # Same scale and zero point, full uint8 container: values stay on the consumer's grid.
            acts["ort"][out_site] = QuantSpec(
                bits=8, signed=False, scale=src.scale, zero_point=src.zero_point, axis=None, lo=src.lo, hi=src.hi
            )
        name = {-1: "low", 0: "base", 1: "high"}.get(offset, f"offset{offset:+d}") if alloc.adaptive else "base"
        tiers.append(Tier(index=t, name=name, activations=acts))
    return tuple(tiers)


def weight_specs(
    model: SRModel,
    layers: tuple[LayerInfo, ...],
    cfg: QuantConfig,
    masks: Mapping[str, NMMask],
    clips: Mapping[str, np.ndarray] | None = None,
) -> dict[str, QuantSpec]:
    params = dict(model.module.named_parameters())
    out = {}
    for layer in layers:
        if not layer.quantized:
            continue
        w = params[layer.weight].detach().numpy()
        if layer.weight in masks:
            w = masks[layer.weight].pruned(w)
        bits = cfg.weight_bits if layer.role == "body" else 8
        if clips is not None and layer.weight in clips:
            absmax = clips[layer.weight]
        else:
            absmax = weight_absmax(w, bits, cfg.resolved_weight_method if bits < 8 else "minmax")
        out[layer.weight] = symmetric_spec(absmax, bits, axis=0, narrow=True)
    return out


def make_plan(
    model: SRModel,
    layers: tuple[LayerInfo, ...],
    weights: Mapping[str, QuantSpec],
    tiers: tuple[Tier, ...],
    alloc: BitAllocation,
    masks: Mapping[str, NMMask],
    meta: Mapping[str, Any],
) -> QuantPlan:
    selector = None
    if alloc.adaptive:
        from srdeploy.calib.complexity import STATISTIC

        selector = Selector(statistic=STATISTIC, thresholds=alloc.thresholds, tiers=tuple(range(len(tiers))))
    model_meta = dict(
        arch=model.arch, name=model.name, scale=model.scale, hparams={k: v for k, v in model.hparams.items()}
    )
    return QuantPlan(
        model=model_meta,
        layers=layers,
        weights=dict(weights),
        tiers=tiers,
        masks=dict(masks),
        selector=selector,
        meta={
            **meta,
            "default_tier": alloc.default_tier,
            "layer_bit_offsets": {k: int(v) for k, v in sorted(alloc.layer_offsets.items())},
        },
    )


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0
