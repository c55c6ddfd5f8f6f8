"""Label-free refinement of a plan against the fp32 outputs (AdaBM-style).

Learned: activation clip bounds of every quantized body conv input (shared by all tiers), a
per-output-channel weight clip (log-scale offset), the layer-to-bit measures and the two image
complexity thresholds. Frozen: all network weights. Loss on LR patches only:
255 * L1(SR_q, SR_fp) + feature_weight * mean ||f_q/|f_q| - f_fp/|f_fp||| over residual block outputs
+ bit_weight * max(FAB - base bits, 0). Parameter groups take turns (weights, activations,
bits) in ten phases, as AdaBM does; after each phase the L1 on a fixed batch of calibration
patches is measured and the best state is kept, so refinement never makes that loss worse.
Simulation runs on the trt grids; the ort grids are derived from the refined ranges afterwards.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from srdeploy.calib.complexity import complexity_torch
from srdeploy.calib.ste import fq_signed, fq_unsigned, soft_step
from srdeploy.models.base import SRModel
from srdeploy.models.common import ResidualAdd
from srdeploy.quant import sites
from srdeploy.quant.plan import QuantPlan


@dataclass(frozen=True)
class RefineConfig:
    steps: int = 300
    batch_size: int = 2
    lr_bounds: float = 0.01
    lr_thresholds: float = 0.1
    lr_layer_bits: float = 0.01
    feature_weight: float = 10.0
    bit_weight: float = 50.0
    learn_bits: bool = True
    phases: int = 10
    seed: int = 0
    groups: tuple[str, ...] = ("weights", "activations", "bits")


@dataclass
class RefineResult:
    ranges: dict[str, tuple[float, float]]  # trt input site -> (lo, hi)
    weight_absmax: dict[str, np.ndarray]
    layer_offsets: dict[str, int]
    thresholds: tuple[float, ...]
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    eval_loss_before: float = 0.0
    eval_loss_after: float = 0.0


class _Context:
    """Per-batch image bit offsets, shared by all hooks of the student."""

    image_offset: torch.Tensor = torch.zeros(1)


class _WeightFQ(nn.Module):
    def __init__(self, absmax: np.ndarray, bits: int, mask: np.ndarray | None) -> None:
        super().__init__()
        self.register_buffer("absmax", torch.from_numpy(np.asarray(absmax, np.float32)).view(-1, 1, 1, 1))
        self.log_gain = nn.Parameter(torch.zeros(self.absmax.shape))
        self.bits = float(bits)
        self.register_buffer("mask", None if mask is None else torch.from_numpy(mask.astype(np.float32)))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.mask is not None:
            w = w * self.mask
        return fq_signed(w, self.absmax * torch.exp(self.log_gain), torch.tensor(self.bits), narrow=True)


class _ActFQ(nn.Module):
    def __init__(self, lo: float, hi: float, unsigned: bool, base: int, layer_offset: int, ctx: _Context) -> None:
        super().__init__()
        self.lo, self.hi = nn.Parameter(torch.tensor(float(lo))), nn.Parameter(torch.tensor(float(hi)))
        self.measure = nn.Parameter(torch.tensor(float(layer_offset)))
        self.unsigned, self.base, self.ctx = unsigned, float(base), ctx

    def layer_offset(self) -> torch.Tensor:
        return soft_step(torch.round(torch.clamp(self.measure, -1.0, 1.0)), torch.tanh(self.measure))

    def bits(self) -> torch.Tensor:
        b = self.base + self.ctx.image_offset + self.layer_offset()
        return b.clamp(2.0, 8.0).view(-1, 1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unsigned:
            return fq_unsigned(x, self.hi, self.bits())
        return fq_signed(x, torch.maximum(self.hi.abs(), self.lo.abs()), self.bits())


def _image_offset(c: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    hard = (c > hi).float() - (c < lo).float()
    soft = torch.tanh((c - (hi + lo) / 2) * 2 / (hi - lo).clamp_min(1e-6))
    return soft_step(hard, soft)


def refine(
    model: SRModel,
    plan: QuantPlan,
    patches: np.ndarray,
    cfg: RefineConfig,
    progress: Callable[[int], None] | None = None,
) -> RefineResult:
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    teacher = model.module.eval()
    student = copy.deepcopy(model.module).eval()
    for p in student.parameters():
        p.requires_grad_(False)
    named = dict(student.named_modules())
    ctx = _Context()
    tier = plan.tier(plan.default_tier).sites("trt")
    base = int(plan.meta.get("act_bits", 8))
    offsets: Mapping[str, int] = plan.meta.get("layer_bit_offsets", {})
    acts: dict[str, _ActFQ] = {}
    wfqs: dict[str, _WeightFQ] = {}
    for layer in plan.quantized_layers():
        conv = named[layer.module]
        spec = plan.weights[layer.weight]
        mask = plan.masks.get(layer.weight)
        wfq = _WeightFQ(spec.scale * spec.qmax, spec.bits, None if mask is None else mask.keep)
        parametrize.register_parametrization(conv, "weight", wfq)
        wfqs[layer.weight] = wfq
        in_spec = tier[sites.site(layer.weight, sites.INPUT)]
        if layer.role == "body":
            q = _ActFQ(in_spec.lo, in_spec.hi, not in_spec.signed, base, int(offsets.get(layer.weight, 0)), ctx)
            acts[layer.weight] = q
            conv.register_forward_pre_hook(lambda _m, a, q=q: (q(a[0]), *a[1:]))
        else:
            conv.register_forward_pre_hook(lambda _m, a, s=in_spec: (s.fake_quant_torch(a[0]), *a[1:]))
    for name, spec in tier.items():
        key, kind = sites.parse(name)
        if kind == sites.SKIP:
            named[key].register_forward_pre_hook(lambda _m, a, s=spec: (a[0], s.fake_quant_torch(a[1])))
    sel = plan.selector
    adaptive = sel is not None and len(sel.thresholds) == 2
    th = torch.tensor(sel.thresholds if adaptive else (0.0, 1.0), dtype=torch.float32)
    thresholds = nn.Parameter(th.clone())
    feats_t: list[torch.Tensor] = []
    feats_s: list[torch.Tensor] = []
    blocks_t = [m for m in teacher.modules() if isinstance(m, ResidualAdd) and m.role == "block"]
    blocks_s = [m for m in student.modules() if isinstance(m, ResidualAdd) and m.role == "block"]
    hooks = [b.register_forward_hook(lambda _m, _a, o: feats_t.append(o)) for b in blocks_t]
    hooks += [b.register_forward_hook(lambda _m, _a, o: feats_s.append(o)) for b in blocks_s]
    groups = {
        "weights": ([p for w in wfqs.values() for p in w.parameters()], cfg.lr_bounds),
        "activations": ([p for q in acts.values() for p in (q.lo, q.hi)], cfg.lr_bounds),
        "bits": ([q.measure for q in acts.values()] + ([thresholds] if adaptive else []), cfg.lr_layer_bits),
    }
    if not cfg.learn_bits:
        groups.pop("bits")
    groups = {k: v for k, v in groups.items() if k in cfg.groups}
    opts = {}
    for name, (params, lr) in groups.items():
        if name == "bits" and adaptive:
            opts[name] = torch.optim.Adam(
                [{"params": params[:-1], "lr": lr}, {"params": params[-1:], "lr": cfg.lr_thresholds}]
            )
        else:
            opts[name] = torch.optim.Adam(params, lr=lr)
    scheds = {k: torch.optim.lr_scheduler.StepLR(o, 1, gamma=0.9) for k, o in opts.items()}
    order = list(opts)
    data = torch.from_numpy(patches)
    rng = np.random.default_rng(cfg.seed)
    per_phase = max(1, cfg.steps // cfg.phases)
    losses = []
    n_body = max(1, len(acts))
    learned = [p for params, _ in groups.values() for p in params]
    held = data[: min(len(data), 16)]

    def eval_loss() -> float:
        # The objective without the bit term, on a fixed batch: refinement keeps its best state.
        with torch.no_grad():
            feats_t.clear()
            target = teacher(held)
            ctx.image_offset = (
                _image_offset(complexity_torch(held), thresholds[0], thresholds[1])
                if adaptive
                else torch.zeros(len(held))
            )
            return float(255.0 * F.l1_loss(student(held), target))

    best = eval_loss()
    first = best
    best_state = [p.detach().clone() for p in learned]
    try:
        for step in range(cfg.steps):
            phase = order[(step // per_phase) % len(order)]
            idx = torch.from_numpy(rng.choice(len(data), cfg.batch_size, replace=False))
            x = data[idx]
            with torch.no_grad():
                feats_t.clear()
                target = teacher(x)
            c = complexity_torch(x)
            ctx.image_offset = _image_offset(c, thresholds[0], thresholds[1]) if adaptive else torch.zeros(len(x))
            feats_s.clear()
            out = student(x)
            # In 8-bit pixel units, as AdaBM trains on [0, 255]: keeps the terms' balance.
            loss = 255.0 * F.l1_loss(out, target)
            if feats_s and cfg.feature_weight:
                fl = 0.0
                for fs, ft in zip(feats_s, feats_t, strict=True):
                    fs_n, ft_n = fs / fs.norm().clamp_min(1e-8), ft / ft.norm().clamp_min(1e-8)
                    fl = fl + (fs_n - ft_n).flatten(1).norm(dim=1).mean()
                loss = loss + cfg.feature_weight * fl / len(feats_s)
            if phase == "bits":
                fab = sum(q.bits().mean() for q in acts.values()) / n_body
                loss = loss + cfg.bit_weight * torch.relu(fab - base)
            opts[phase].zero_grad(set_to_none=True)
            loss.backward()
            opts[phase].step()
            with torch.no_grad():
                if adaptive:
                    thresholds.data = torch.sort(thresholds.data).values
            losses.append(float(loss.detach()))
            if (step + 1) % per_phase == 0 or step + 1 == cfg.steps:
                scheds[phase].step()
                current = eval_loss()
                if current < best:
                    best, best_state = current, [p.detach().clone() for p in learned]
            if progress:
                progress(step + 1)
    finally:
        for h in hooks:
            h.remove()
    with torch.no_grad():
        for p, v in zip(learned, best_state, strict=True):
            p.copy_(v)
    return RefineResult(
        ranges={sites.site(w, sites.INPUT): (float(q.lo.detach()), float(q.hi.detach())) for w, q in acts.items()},
        weight_absmax={w: (f.absmax * torch.exp(f.log_gain)).detach().view(-1).numpy() for w, f in wfqs.items()},
        layer_offsets={w: int(torch.round(torch.clamp(q.measure.detach(), -1, 1))) for w, q in acts.items()},
        thresholds=tuple(float(t) for t in thresholds.detach()) if adaptive else (),
        losses=losses,
        seconds=time.perf_counter() - t0,
        eval_loss_before=first,
        eval_loss_after=best,
    )
