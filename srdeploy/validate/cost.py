"""Cost metrics of the SR quantization papers, computed from a plan (never typed in).

FAB: mean activation bits over the quantized body convs (8-bit / float layers excluded).
BitOPs: MACs of float layers + (b_w/32)(b_a/32) x MACs of quantized layers, at a 1280x720 HR
output. Model size: conv weights x bits (float layers at 32). Masks reduce MACs by their density.
"""

from __future__ import annotations

from collections.abc import Mapping

from srdeploy.quant import sites
from srdeploy.quant.plan import QuantPlan

HR_SIZE = (1280, 720)


def _density(plan: QuantPlan, weight: str) -> float:
    mask = plan.masks.get(weight)
    return float(mask.keep.mean()) if mask is not None else 1.0


def activation_bits(plan: QuantPlan, tier: int, weight: str, profile: str = "trt") -> int | None:
    spec = plan.tier(tier).activations.get(profile, {}).get(sites.site(weight, sites.INPUT))
    return None if spec is None else spec.bits


def fab(plan: QuantPlan, tier_usage: Mapping[int, float] | None = None, profile: str = "trt") -> float | None:
    """Feature average bit-width, averaged over tiers by their usage share."""
    body = [x.weight for x in plan.layers if x.quantized and x.role == "body"]
    if not body:
        return None
    usage = dict(tier_usage or {plan.default_tier: 1.0})
    total = sum(usage.values())
    value = 0.0
    for tier, share in usage.items():
        bits = [activation_bits(plan, tier, w, profile) or 32 for w in body]
        value += (share / total) * sum(bits) / len(bits)
    return value


def lr_pixels(scale: int) -> float:
    return (HR_SIZE[0] / scale) * (HR_SIZE[1] / scale)


def macs(plan: QuantPlan, sparse: bool = True) -> dict[str, float]:
    """Total and body MACs at the reference output size (masked weights counted at density)."""
    px = lr_pixels(plan.model.scale)
    total = body = 0.0
    for x in plan.layers:
        m = x.macs_per_lr_pixel * px * (_density(plan, x.weight) if sparse else 1.0)
        total += m
        if x.role == "body":
            body += m
    return dict(total=total, body=body)


def bitops(plan: QuantPlan, tier_usage: Mapping[int, float] | None = None, profile: str = "trt") -> float:
    px = lr_pixels(plan.model.scale)
    usage = dict(tier_usage or {plan.default_tier: 1.0})
    total_share = sum(usage.values())
    result = 0.0
    for tier, share in usage.items():
        ops = 0.0
        quantized_tier = plan.tier(tier).quantized  # the float tier counts every MAC at 32 x 32 bits
        for x in plan.layers:
            m = x.macs_per_lr_pixel * px * _density(plan, x.weight)
            if x.quantized and quantized_tier:
                bw = plan.weights[x.weight].bits
                ba = activation_bits(plan, tier, x.weight, profile) or 32
                ops += m * (bw / 32.0) * (ba / 32.0)
            else:
                ops += m
        result += (share / total_share) * ops
    return result


def model_size_bytes(plan: QuantPlan, params: Mapping[str, int]) -> float:
    """Weights x bits; ``params`` maps weight name -> element count (pruned elements excluded)."""
    size_bits = 0.0
    for x in plan.layers:
        n = params[x.weight] * _density(plan, x.weight)
        bits = plan.weights[x.weight].bits if x.quantized else 32
        size_bits += n * bits
    return size_bits / 8.0
