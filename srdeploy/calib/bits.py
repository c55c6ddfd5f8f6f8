"""Bit allocators: which activation bit-width each quantized layer gets in each precision tier (a BitMap).

``fixed``: one tier, every layer at the base bits. ``adabm``: AdaBM's layer-to-bit map (input std below /
above the 30th / 70th percentile: -1 / +1 bit) and image-to-bit map (three tiers for image offsets -1, 0,
+1, routed by the Sobel complexity's 10th / 90th percentiles over the calibration patches). With a FAB
target, the high threshold moves up until the calibration patches' expected FAB (tiers weighted by the share of
patches routed to them) is at most the target.
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
) -> BitMap:
    offsets = layer_offsets_from_std(layer_std, layer_percentiles) if use_layer else {}
    if not use_image:
        return BitMap(base=base, weight_bits=weight_bits, skip_bits=skip_bits, layer_offsets=offsets)
    c = np.asarray(complexities, dtype=np.float64)
    t_lo, t_hi = np.percentile(c, image_percentiles)
    if target_fab is not None:
        t_hi = max(t_hi, high_threshold_for_fab(c, t_lo, base, offsets, layer_std, target_fab))
    return BitMap(
        base=base,
        weight_bits=weight_bits,
        skip_bits=skip_bits,
        layer_offsets=offsets,
        tier_offsets=(-1, 0, 1),
        thresholds=(float(t_lo), float(t_hi)),
    )


def tier_fab(base: int, tier_offset: int, offsets: Mapping[str, int], layers: Iterable[str]) -> float:
    """Mean activation bits over ``layers`` in one tier (the BitMap's clamp to [2, 8])."""
    bits = [min(8, max(2, base + tier_offset + offsets.get(w, 0))) for w in layers]
    return float(np.mean(bits)) if bits else float(base)


def high_threshold_for_fab(
    c: np.ndarray, t_lo: float, base: int, offsets: Mapping[str, int], layers: Iterable[str], target: float
) -> float:
    """The lowest high-tier threshold at which the expected FAB over the patches ``c`` is <= ``target``."""
    names = list(layers)
    fab = {o: tier_fab(base, o, offsets, names) for o in (-1, 0, 1)}
    p_low = float(np.mean(c < t_lo))
    room = target - p_low * fab[-1] - (1.0 - p_low) * fab[0]  # what the high tier may add over base
    gain = fab[1] - fab[0]
    if gain <= 0:
        return float(np.min(c))
    p_high = float(np.clip(room / gain, 0.0, 1.0 - p_low))
    ordered = np.sort(c)
    k = int(np.floor(p_high * len(c) + 1e-9))  # at most k patches may route high (value >= threshold)
    if k >= len(c):
        return float(ordered[0])
    return float(np.nextafter(ordered[len(c) - k - 1], np.inf))
