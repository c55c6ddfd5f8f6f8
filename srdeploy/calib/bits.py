"""Bit allocators: which activation bit-width each quantized layer gets in each precision tier (a BitMap).

``fixed``: one tier, every layer at the base bits. ``adabm``: AdaBM's layer-to-bit map (input std below /
above the 30th / 70th percentile: -1 / +1 bit) and image-to-bit map (three tiers for image offsets -1, 0,
+1, routed by the Sobel complexity's 10th / 90th percentiles over the calibration patches). With a FAB
target, the high threshold moves up until the calibration patches' expected FAB (tiers weighted by the share of
patches routed to them) is at most the target.

``image_order``: AdaBM gives the busiest content the extra bit (``busy_high``: tier offsets -1, 0, +1 by
ascending complexity). ``flat_high`` reverses it (+1, 0, -1): measured post-training on EDSR-baseline x4 W4A4
(14 eval images, docs/results/accuracy_w4.json) flat content loses the most PSNR per missing bit (its fp32 PSNR
is high, so the same quantization noise costs more dB), and the reversed map beat static DAQ at equal FAB where
AdaBM's did not. With a FAB target the +1 tier then narrows (its threshold moves down) instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from srdeploy.quant.plan import BitMap


def fixed(base: int, weight_bits: int = 8, skip_bits: int = 8) -> BitMap:
    return BitMap(base=base, weight_bits=weight_bits, skip_bits=skip_bits)


def layer_offsets_from_std(stds: Mapping[str, float], percentiles: tuple[float, float]) -> dict[str, int]:
    if not stds:
        return {}
    values = np.array(list(stds.values()), dtype=np.float64)
    lo, hi = np.percentile(values, percentiles[0]), np.percentile(values, percentiles[1])
    return {k: (-1 if v < lo else 1 if v > hi else 0) for k, v in sorted(stds.items())}


def adabm(
    base: int,
    layer_std: Mapping[str, float],
    complexities: np.ndarray,
    layer_percentiles: tuple[float, float] = (30.0, 70.0),
    image_percentiles: tuple[float, float] = (10.0, 90.0),
    use_layer: bool = True,
    use_image: bool = True,
    weight_bits: int = 8,
    skip_bits: int = 8,
    target_fab: float | None = None,
    image_order: str = "busy_high",
    layer_offsets: Mapping[str, int] | None = None,
) -> BitMap:
    """``layer_offsets``: a layer-to-bit map decided elsewhere (calib/layer_bits.py) instead of AdaBM's."""
    if not use_layer:
        offsets: dict[str, int] = {}
    elif layer_offsets is not None:
        offsets = dict(sorted(layer_offsets.items()))
    else:
        offsets = layer_offsets_from_std(layer_std, layer_percentiles)
    if not use_image:
        return BitMap(base=base, weight_bits=weight_bits, skip_bits=skip_bits, layer_offsets=offsets)
    c = np.asarray(complexities, dtype=np.float64)
    # a percentile at 0 (100) means no tier below (above) the base tier, also for content outside the patches'
    keep_low, keep_high = image_percentiles[0] > 0, image_percentiles[1] < 100
    t_lo, t_hi = np.percentile(c, image_percentiles)
    t_lo, t_hi = (t_lo if keep_low else -np.inf), (t_hi if keep_high else np.inf)
    flat_high = image_order == "flat_high"
    if target_fab is not None and flat_high:
        t_lo = min(t_lo, flat_threshold_for_fab(c, t_hi, base, offsets, layer_std, target_fab))
    elif target_fab is not None:
        t_hi = max(t_hi, high_threshold_for_fab(c, t_lo, base, offsets, layer_std, target_fab))
    low, high = (1, -1) if flat_high else (-1, 1)  # offsets of the flattest and the busiest tier
    return BitMap(
        base=base,
        weight_bits=weight_bits,
        skip_bits=skip_bits,
        layer_offsets=offsets,
        tier_offsets=(*([low] if keep_low else []), 0, *([high] if keep_high else [])),
        thresholds=(*([float(t_lo)] if keep_low else []), *([float(t_hi)] if keep_high else [])),
    )


def tier_fab(base: int, tier_offset: int, offsets: Mapping[str, int], layers: Iterable[str]) -> float:
    """Mean activation bits over ``layers`` in one tier (the BitMap's clamp to [2, 8])."""
    bits = [min(8, max(2, base + tier_offset + offsets.get(w, 0))) for w in layers]
    return float(np.mean(bits)) if bits else float(base)


def _plus_share(
    p_minus: float, base: int, offsets: Mapping[str, int], layers: Iterable[str], target: float
) -> float | None:
    """The largest share of patches the +1 tier may take, with ``p_minus`` of them at -1 and the rest at base,
    for an expected FAB <= ``target``; None when the +1 tier adds no bits."""
    names = list(layers)
    fab = {o: tier_fab(base, o, offsets, names) for o in (-1, 0, 1)}
    room = target - p_minus * fab[-1] - (1.0 - p_minus) * fab[0]  # what the +1 tier may add over base
    gain = fab[1] - fab[0]
    return None if gain <= 0 else float(np.clip(room / gain, 0.0, 1.0 - p_minus))


def high_threshold_for_fab(
    c: np.ndarray, t_lo: float, base: int, offsets: Mapping[str, int], layers: Iterable[str], target: float
) -> float:
    """The lowest high-tier threshold at which the expected FAB over the patches ``c`` is <= ``target``."""
    p_high = _plus_share(float(np.mean(c < t_lo)), base, offsets, layers, target)
    if p_high is None:
        return float(np.min(c))
    ordered = np.sort(c)
    k = int(np.floor(p_high * len(c) + 1e-9))  # at most k patches may route high (value >= threshold)
    if k >= len(c):
        return float(ordered[0])
    return float(np.nextafter(ordered[len(c) - k - 1], np.inf))


def flat_threshold_for_fab(
    c: np.ndarray, t_hi: float, base: int, offsets: Mapping[str, int], layers: Iterable[str], target: float
) -> float:
    """``flat_high``: the highest +1-tier threshold (patches below it get the extra bit) at which the expected FAB
    over the patches ``c`` is <= ``target``, the busiest (>= ``t_hi``) at -1."""
    p_flat = _plus_share(float(np.mean(c >= t_hi)), base, offsets, layers, target)
    if p_flat is None:
        return float(np.max(c))
    ordered = np.sort(c)
    k = int(np.floor(p_flat * len(c) + 1e-9))  # at most k patches may route to +1 (value < threshold)
    return float(ordered[k]) if k < len(c) else float(np.nextafter(ordered[-1], np.inf))
