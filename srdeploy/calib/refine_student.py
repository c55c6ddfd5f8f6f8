"""The refinement student: the deployed network (apply_plan: structure, masks with re-fitted weights and
biases, equalization) with learnable fake quantization (AdaBM-style).

Learned: the activation clip of every quantized body conv input (log-scale gains on the calibrated range
ends), a per-output-channel weight clip gain of every quantized conv, the layer-to-bit measures and the two
image-complexity thresholds. Rounding is straight-through; scales are fp16-rounded like every execution.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from srdeploy.calib.ste import soft_step
from srdeploy.profiles import get_profile
from srdeploy.quant import sites
from srdeploy.quant.apply import apply_plan
from srdeploy.quant.grid import fake_quant_range_torch, fake_quant_torch, fp16_representable_torch
from srdeploy.quant.plan import QuantPlan
from srdeploy.quant.simulate import attach_activation_quantizers, attach_site
from srdeploy.quant.spec import QuantSpec


class BitContext:
    """Per-batch image bit offsets (one per sample), shared by all activation quantizers, and which samples
    are routed to a tier whose residual stream is float (bits.float_residual_tiers)."""

    def __init__(self) -> None:
        self.image_offset = torch.zeros(1)
        self.float_stream = torch.zeros(1, dtype=torch.bool)


class WeightQuant(nn.Module):
    """Parametrization of a conv weight: symmetric narrow per-channel grid with a learnable clip gain."""

    def __init__(self, absmax: np.ndarray, bits: int) -> None:
        super().__init__()
        self.register_buffer("absmax", torch.from_numpy(np.asarray(absmax, np.float32)).view(-1, 1, 1, 1))
        self.log_gain = nn.Parameter(torch.zeros(self.absmax.shape))
        self.qmax = float(2 ** (bits - 1) - 1)

    def clip(self) -> torch.Tensor:
        return self.absmax * torch.exp(self.log_gain)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        scale = fp16_representable_torch(self.clip().clamp_min(1e-12) / self.qmax)
        return fake_quant_torch(w, scale, torch.zeros_like(scale), -self.qmax, self.qmax, ste=True)


class ActQuant(nn.Module):
    """A body conv input: learnable range (log gains on the calibrated ends), per-sample bit-width."""

    def __init__(self, lo: float, hi: float, grid: str, base: int, layer_offset: int, ctx: BitContext) -> None:
        super().__init__()
        self.register_buffer("lo0", torch.tensor(float(lo)))
        self.register_buffer("hi0", torch.tensor(float(hi)))
        self.g_lo, self.g_hi = nn.Parameter(torch.zeros(())), nn.Parameter(torch.zeros(()))
        self.measure = nn.Parameter(torch.tensor(float(layer_offset)))
        self.grid, self.base, self.ctx = grid, float(base), ctx
        # learned offsets stay in AdaBM's [-1, 1], widened to reach the plan's own (a measured map's +4)
        self.offset_lo, self.offset_hi = float(min(-1, layer_offset)), float(max(1, layer_offset))

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.lo0 * torch.exp(self.g_lo), self.hi0 * torch.exp(self.g_hi)

    def hard_offset(self) -> torch.Tensor:
        return torch.round(torch.clamp(self.measure, self.offset_lo, self.offset_hi))

    def layer_offset(self) -> torch.Tensor:
        return soft_step(self.hard_offset(), torch.tanh(self.measure))

    def bits(self) -> torch.Tensor:
        return (self.base + self.ctx.image_offset + self.layer_offset()).clamp(2.0, 8.0).view(-1, 1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.bounds()
        return fake_quant_range_torch(x, lo, hi, self.bits(), self.grid)


@dataclass
class Student:
    module: nn.Module
    acts: dict[str, ActQuant]  # body conv weight -> its input quantizer
    weights: dict[str, WeightQuant]
    ctx: BitContext
    thresholds: nn.Parameter | None  # image complexity thresholds (adaptive plans)
    tier_offsets: tuple[int, ...] = (0,)  # the plan's image-to-bit offsets, one per tier (len thresholds + 1)
    handles: list = field(default_factory=list)
    float_residual_tiers: tuple[int, ...] = ()  # tiers without grids on the residual stream

    def groups(self, learn_bits: bool, learn_weights: bool = True) -> dict[str, list[nn.Parameter]]:
        # weight and activation clips learn together (alternating them let one undo the other's gain on the
        # held-out split); the bit measures and thresholds take turns with them
        weights = [w.log_gain for w in self.weights.values()] if learn_weights else []
        out = {"clips": weights + [p for q in self.acts.values() for p in (q.g_lo, q.g_hi)]}
        if learn_bits:
            out["bits"] = [q.measure for q in self.acts.values()] + (
                [self.thresholds] if self.thresholds is not None else []
            )
        return {k: v for k, v in out.items() if v}

    def parameters(self) -> Iterator[nn.Parameter]:
        for params in self.groups(True).values():
            yield from params


def _body_inputs(plan: QuantPlan) -> dict[str, str]:
    return {sites.site(x.weight, sites.INPUT): x.weight for x in plan.quantized_layers() if x.role == "body"}


def make_student(module: nn.Module, plan: QuantPlan, profile: str) -> Student:
    """The student on ``profile``'s grids (its default tier for every site that is not learned)."""
    net = apply_plan(module, plan)
    for p in net.parameters():
        p.requires_grad_(False)
    named = dict(net.named_modules())
    weights = {}
    for layer in plan.quantized_layers():
        spec = plan.weights[layer.weight]
        wq = WeightQuant(spec.scale * spec.qmax, spec.bits)
        parametrize.register_parametrization(named[layer.module], "weight", wq)
        weights[layer.weight] = wq
    ctx, grid_of = BitContext(), get_profile(profile).activation_grid
    ranges, body = plan.ranges[profile], _body_inputs(plan)
    acts: dict[str, ActQuant] = {}
    for site_name, weight in sorted(body.items()):
        r = ranges[site_name]
        offset = int(plan.bits.layer_offsets.get(weight, 0))
        grid = grid_of(r.nonnegative, plan.bits.bits(weight, plan.default_tier))
        acts[weight] = ActQuant(r.lo, r.hi, grid, plan.bits.base, offset, ctx)
    # a site that takes over a learned site's grid (ort: the conv output feeding that conv) uses its quantizer
    tied = {s: acts[body[r.reuse]] for s, r in ranges.items() if r.reuse in body}
    learned = {**{s: acts[w] for s, w in body.items()}, **tied}
    handles = [attach_site(named, s, q) for s, q in sorted(learned.items())]
    default = plan.tier(plan.default_tier).sites(profile)
    fixed: Mapping = {s: spec for s, spec in default.items() if s not in learned}
    b = plan.bits  # the bit tiers as the selector routes them (the float tier comes after refinement)
    stream = {s for s in fixed if b.float_residual_tiers and ranges[s].residual}
    handles += attach_activation_quantizers(net, {s: q for s, q in fixed.items() if s not in stream}, ste=True)
    # the residual stream: quantized unless the sample's tier leaves it float
    handles += [attach_site(named, s, _StreamQuant(fixed[s], ctx)) for s in sorted(stream)]
    adaptive = len(b.tier_offsets) > 1 and len(b.thresholds) == len(b.tier_offsets) - 1
    th = nn.Parameter(torch.tensor(b.thresholds, dtype=torch.float32)) if adaptive else None
    offsets = tuple(b.tier_offsets) if adaptive else (0,)
    return Student(net, acts, weights, ctx, th, offsets, handles, tuple(b.float_residual_tiers) if adaptive else ())


class _StreamQuant:
    """A residual-stream site's fixed grid (straight-through), skipped for samples in float-residual tiers."""

    def __init__(self, spec: QuantSpec, ctx: BitContext) -> None:
        self.spec, self.ctx = spec, ctx

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        q = self.spec.fake_quant_torch(x, True)
        if not bool(self.ctx.float_stream.any()):
            return q
        return torch.where(self.ctx.float_stream.view(-1, *([1] * (x.dim() - 1))), x, q)


def float_stream(c: torch.Tensor, thresholds: torch.Tensor | None, float_tiers: tuple[int, ...]) -> torch.Tensor:
    """Per sample: is it routed (hard, by ``thresholds``) to a tier whose residual stream is float."""
    if thresholds is None or not float_tiers:
        return torch.zeros(len(c), dtype=torch.bool)
    tier = (c.view(-1, 1) >= thresholds.detach().view(1, -1)).sum(1)
    return torch.isin(tier, torch.tensor(float_tiers))


def image_offsets(c: torch.Tensor, thresholds: torch.Tensor | None, tier_offsets: tuple[int, ...]) -> torch.Tensor:
    """The plan's image-to-bit term per sample (soft STE): ``tier_offsets[i]`` for a statistic in
    [thresholds[i-1], thresholds[i]) -- the selector's routing, for either image order and any tier count."""
    if thresholds is None or len(tier_offsets) < 2:
        return torch.zeros(len(c))
    steps = torch.tensor(np.diff(tier_offsets), dtype=torch.float32)  # the offset change at each threshold
    above = c.view(-1, 1) >= thresholds.view(1, -1)
    hard = tier_offsets[0] + (above.float() * steps).sum(1)
    # each step smoothed over a width from the thresholds' spread (or a quarter of a lone threshold)
    spread = (thresholds[-1] - thresholds[0]) / 2 if len(thresholds) > 1 else thresholds[0].abs() / 4
    soft_steps = 0.5 * (1 + torch.tanh((c.view(-1, 1) - thresholds.view(1, -1)) / spread.clamp_min(1e-6)))
    return soft_step(hard, tier_offsets[0] + (soft_steps * steps).sum(1))
