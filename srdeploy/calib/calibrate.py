"""Calibration arithmetic: observed statistics + bit map -> calibrated ranges; deployed weights -> weight grids.

The range of every site is fitted at the site's default-tier bit-width (bit-aware clipping); the per-tier
grids then follow from the ranges (calib/tiers.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from srdeploy.calib import bits as bit_alloc
from srdeploy.calib.complexity import complexity
from srdeploy.calib.observers import SiteStats
from srdeploy.calib.ranges import RANGE_METHODS, weight_absmax
from srdeploy.calib.site_plan import ProfileSites
from srdeploy.calib.tiers import site_bits
from srdeploy.profiles import get_profile
from srdeploy.quant import sites
from srdeploy.quant.plan import ActRange, BitMap, LayerInfo
from srdeploy.quant.spec import QuantSpec, symmetric_spec
from srdeploy.recipe import QuantSection


def allocate_bits(
    q: QuantSection,
    stats: Mapping[str, SiteStats],
    layers: Sequence[LayerInfo],
    patches: np.ndarray,
    layer_offsets: Mapping[str, int] | None = None,
) -> BitMap:
    """``layer_offsets``: the measured layer-to-bit map (layer_map: sensitivity) instead of AdaBM's."""
    if not q.adaptive.enabled:
        return bit_alloc.fixed(q.act_bits, q.weight_bits, q.skip_bits)
    body = [x.weight for x in layers if x.quantized and x.role == "body"]
    layer_std = {w: float(np.mean(stats[sites.site(w, sites.INPUT)].img_std)) for w in body}
    bits = bit_alloc.adabm(
        q.act_bits,
        layer_std,
        complexity(patches),
        layer_percentiles=q.adaptive.layer_percentiles,
        image_percentiles=q.adaptive.image_percentiles,
        image_order=q.adaptive.image_order,
        use_layer=q.adaptive.layer_bits,
        use_image=q.adaptive.image_bits,
        weight_bits=q.weight_bits,
        skip_bits=q.skip_bits,
        target_fab=q.adaptive.target_fab,
        layer_offsets=layer_offsets,
    )
    if not q.adaptive.high_tier_float_residuals:
        return bits
    return replace(bits, float_residual_tiers=tuple(t for t, o in enumerate(bits.tier_offsets) if o > 0))


def estimate_ranges(
    stats: Mapping[str, SiteStats],
    site_plan: Mapping[str, ProfileSites],
    layers: Sequence[LayerInfo],
    bits: BitMap,
    q: QuantSection,
) -> dict[str, dict[str, ActRange]]:
    """profile -> site -> calibrated range, with the recipe's range method at default-tier bits."""
    fn = RANGE_METHODS[q.range_method]
    # AdaBM's EMA-smoothed start only without equalization: equalized ranges start where static DAQ's do
    options: dict[str, Any] = dict(
        percentile=q.percentile, clip_floor=q.clip_floor, ema_init=q.method == "adabm" and not q.equalize_enabled
    )
    roles = {x.weight: x.role for x in layers}
    out: dict[str, dict[str, ActRange]] = {}
    for profile_name, ps in site_plan.items():
        grid_of = get_profile(profile_name).activation_grid
        ranges: dict[str, ActRange] = {}
        for name in ps.sites:
            if name in ps.reuse:
                ranges[name] = ActRange(0.0, 0.0, reuse=ps.reuse[name])
                continue
            if name in ps.fixed:
                ranges[name] = ActRange(*ps.fixed[name], nonnegative=True)
                continue
            st, relu = stats[name], name in ps.relu_outputs
            b = site_bits(name, roles, bits, bits.default_tier)
            nonnegative = st.nonnegative or relu
            lo, hi = fn(st, b, grid_of(nonnegative, b), options)
            ranges[name] = ActRange(
                0.0 if relu else float(lo), float(hi), nonnegative=nonnegative, residual=name in ps.residual
            )
        out[profile_name] = ranges
    return out


def weight_bits(layer: LayerInfo, q: QuantSection) -> int:
    return q.weight_bits if layer.role == "body" else 8


# Integer backends (ONNX Runtime's QLinearConv, TensorRT) hold a conv's bias as int32 on the grid
# input scale x weight scale. A channel with (almost) no weights but a bias would overflow it.
INT32_BIAS_LIMIT = 2.0**30  # half of int32: room for refinement narrowing an input range


def bias_safe_absmax(
    absmax: np.ndarray, bias: np.ndarray | None, bits: int, input_ranges: Sequence[ActRange]
) -> np.ndarray:
    """``absmax`` per output channel, raised where |bias| / (input scale x weight scale) would pass
    INT32_BIAS_LIMIT at the finest input grid any profile uses (8 bit over the calibrated range). Such a
    channel's weights are ~0, so the coarser grid changes nothing measurable; the bias stays exact."""
    widths = [r.hi - r.lo for r in input_ranges if r.reuse is None and r.hi > r.lo]
    if bias is None or not widths:
        return absmax
    input_scale = min(widths) / 255.0
    qmax = 2 ** (bits - 1) - 1
    floor = qmax * np.abs(np.asarray(bias, np.float64)) / (input_scale * INT32_BIAS_LIMIT)
    return np.maximum(np.asarray(absmax, np.float64).reshape(floor.shape), floor)


def weight_specs(
    layers: Sequence[LayerInfo],
    deployed: Mapping[str, np.ndarray],
    q: QuantSection,
    clips: Mapping[str, np.ndarray] | None = None,
    ranges: Mapping[str, Mapping[str, ActRange]] | None = None,
) -> dict[str, QuantSpec]:
    """Per-output-channel symmetric grids of the deployed (pruned, equalized) weights of quantized convs;
    with ``ranges`` (profile -> site -> range) each grid also keeps the conv's bias int32-representable."""
    out = {}
    for layer in layers:
        if not layer.quantized:
            continue
        b = weight_bits(layer, q)
        if clips is not None and layer.weight in clips:
            absmax = clips[layer.weight]
        else:
            absmax = weight_absmax(deployed[layer.weight], b, q.resolved_weight_method if b < 8 else "minmax")
        site = sites.site(layer.weight, sites.INPUT)
        inputs = [r[site] for r in (ranges or {}).values() if site in r]
        bias = deployed.get(layer.weight.removesuffix("weight") + "bias")
        out[layer.weight] = symmetric_spec(bias_safe_absmax(absmax, bias, b, inputs), b, axis=0, narrow=True)
    return out
