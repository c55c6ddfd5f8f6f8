"""Bit allocators: which activation bit-width each quantized layer gets in each precision tier.

``fixed``: one tier, every layer at the base bits. ``adabm``: AdaBM's layer-to-bit map (input
std below/above the 30th/70th percentile: -1/+1 bit) and image-to-bit map (three tiers for
image offsets -1, 0, +1, routed by the Sobel complexity's 10th/90th percentiles).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from srdeploy.quant.grid import MAX_BITS, MIN_BITS


@dataclass(frozen=True)
class BitAllocation:
    layer_offsets: Mapping[str, int]  # conv weight -> b_L
    tier_offsets: tuple[int, ...]  # tier index -> b_I
    base: int
    thresholds: tuple[float, ...] = ()  # image complexity thresholds (len = tiers - 1)

    def bits(self, weight: str, tier: int) -> int:
        b = self.base + self.tier_offsets[tier] + self.layer_offsets.get(weight, 0)
        return int(min(MAX_BITS, max(MIN_BITS, b)))

    @property
    def adaptive(self) -> bool:
        return len(self.tier_offsets) > 1

    @property
    def default_tier(self) -> int:
        return self.tier_offsets.index(0) if 0 in self.tier_offsets else 0


def fixed(base: int) -> BitAllocation:
    return BitAllocation(layer_offsets={}, tier_offsets=(0,), base=base)


def layer_offsets_from_std(stds: Mapping[str, float], percentiles: tuple[float, float]) -> dict[str, int]:
    if not stds:
        return {}
    values = np.array(list(stds.values()), dtype=np.float64)
    lo, hi = np.percentile(values, percentiles[0]), np.percentile(values, percentiles[1])
    return {k: (-1 if v < lo else 1 if v > hi else 0) for k, v in stds.items()}


def adabm(
    base: int,
    layer_std: Mapping[str, float],
    complexities: np.ndarray,
    layer_percentiles: tuple[float, float] = (30.0, 70.0),
    image_percentiles: tuple[float, float] = (10.0, 90.0),
    use_layer: bool = True,
    use_image: bool = True,
) -> BitAllocation:
    offsets = layer_offsets_from_std(layer_std, layer_percentiles) if use_layer else {}
    if not use_image:
        return BitAllocation(layer_offsets=offsets, tier_offsets=(0,), base=base)
    t_lo, t_hi = np.percentile(np.asarray(complexities, dtype=np.float64), image_percentiles)
    return BitAllocation(
        layer_offsets=offsets, tier_offsets=(-1, 0, 1), base=base, thresholds=(float(t_lo), float(t_hi))
    )


ALLOCATORS = {"fixed": fixed, "adabm": adabm}
