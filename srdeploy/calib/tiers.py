"""From the plan's decisions (bit map + calibrated ranges) to the grids of every site per tier and profile.

A pure function of plan data, used by calibration, by refinement (new ranges and layer bits) and by
``srdeploy emit``'s consistency check. AdaBM shares one range across tiers: only the bit-width changes. A tier
in ``bits.float_residual_tiers`` has no grid on the residual stream (ranges marked ``residual``): its residual
Adds and the convs that feed them run in float there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from srdeploy.profiles import get_profile
from srdeploy.quant import sites
from srdeploy.quant.plan import ActRange, BitMap, LayerInfo, Tier
from srdeploy.quant.spec import QuantSpec, spec_for_range

TIER_NAMES = {-1: "low", 0: "base", 1: "high"}
FLOAT_TIER = "float"


def site_bits(site_name: str, roles: Mapping[str, str], bits: BitMap, tier: int) -> int:
    key, kind = sites.parse(site_name)
    if kind == sites.SKIP:
        return bits.skip_bits
    if kind == sites.OUTPUT:
        return 8
    return bits.bits(key, tier) if roles[key] == "body" else 8


def tier_name(bits: BitMap, tier: int) -> str:
    if not bits.adaptive:
        return "base"
    offset = bits.tier_offsets[tier]
    return TIER_NAMES.get(offset, f"offset{offset:+d}")


def profile_specs(
    profile: str, ranges: Mapping[str, ActRange], roles: Mapping[str, str], bits: BitMap, tier: int
) -> dict[str, QuantSpec]:
    grid_of = get_profile(profile).activation_grid
    out: dict[str, QuantSpec] = {}
    float_stream = tier in bits.float_residual_tiers
    for name in sorted(n for n, r in ranges.items() if r.reuse is None and not (float_stream and r.residual)):
        r = ranges[name]
        b = site_bits(name, roles, bits, tier)
        out[name] = spec_for_range(r.lo, r.hi, b, grid_of(r.nonnegative, b))
    for name in sorted(n for n, r in ranges.items() if r.reuse is not None):
        src = out[ranges[name].reuse]  # type: ignore[index]
        # Same scale and zero point in a full 8-bit container: values stay on the consumer's grid.
        out[name] = QuantSpec(
            bits=8, signed=src.signed, scale=src.scale, zero_point=src.zero_point, axis=None, lo=src.lo, hi=src.hi
        )
    return out


def realize_tiers(
    layers: Sequence[LayerInfo], bits: BitMap, ranges: Mapping[str, Mapping[str, ActRange]]
) -> tuple[Tier, ...]:
    roles = {x.weight: x.role for x in layers}
    quantized = tuple(
        Tier(
            index=t,
            name=tier_name(bits, t),
            activations={p: profile_specs(p, ranges[p], roles, bits, t) for p in sorted(ranges)},
        )
        for t in range(len(bits.tier_offsets))
    )
    if bits.float_tier is None:
        return quantized
    # The float tier (bits.float_below): no activation grid in any profile, float weights.
    float_tier = Tier(index=bits.float_tier, name=FLOAT_TIER, activations={p: {} for p in ranges}, quantized=False)
    return (*quantized, float_tier)
