"""Bit allocators: which activation bit-width each quantized layer gets in each precision tier (a BitMap).

``fixed``: one tier, every layer at the base bits. ``adabm``: AdaBM's layer-to-bit map (input std below /
above the 30th / 70th percentile: -1 / +1 bit) and image-to-bit map (three tiers for image offsets -1, 0,
+1, routed by the Sobel complexity's 10th / 90th percentiles over the calibration patches).
"""

from __future__ import annotations

from collections.abc import Mapping

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
) -> BitMap:
    offsets = layer_offsets_from_std(layer_std, layer_percentiles) if use_layer else {}
    if not use_image:
        return BitMap(base=base, weight_bits=weight_bits, skip_bits=skip_bits, layer_offsets=offsets)
    t_lo, t_hi = np.percentile(np.asarray(complexities, dtype=np.float64), image_percentiles)
    return BitMap(
        base=base,
        weight_bits=weight_bits,
        skip_bits=skip_bits,
        layer_offsets=offsets,
        tier_offsets=(-1, 0, 1),
        thresholds=(float(t_lo), float(t_hi)),
    )
