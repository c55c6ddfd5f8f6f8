"""Label-free refinement of a plan against the fp32 outputs (AdaBM-style), that helps or changes nothing.

Loss on LR patches: a distance to the fp32 output (L1, per-patch PSNR, or the PSNR drop vs HR that it
implies: ``RefineSection.loss``) + feature_weight * mean normalised distance of residual block outputs +
(bits phase) bit_weight * max(FAB - base bits, 0). Parameter groups (weight and activation clips together,
then bits) take turns in phases. The calibration patches are split: the student trains on one part, and
after each phase the same distance on the held-out part decides: the best state is kept (never worse than
the start), training stops after ``patience`` phases without improvement or when the time budget is spent.
Label-free except ``drop``, which weighs each patch by fp32's own error against the HR crop behind it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from srdeploy.calib.calibrate import weight_specs
from srdeploy.calib.complexity import complexity_torch
from srdeploy.calib.refine_student import Student, float_stream, image_offsets, make_student
from srdeploy.calib.tiers import realize_tiers
from srdeploy.models.common import ResidualAdd
from srdeploy.quant import sites
from srdeploy.quant.plan import ActRange, QuantPlan
from srdeploy.recipe import QuantSection, RefineSection


@dataclass
class RefineResult:
    ranges: dict[str, tuple[float, float]]  # body conv input site -> (lo, hi)
    weight_absmax: dict[str, np.ndarray]
    layer_offsets: dict[str, int]
    thresholds: tuple[float, ...]
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    holdout_before: float = 0.0
    holdout_after: float = 0.0
    steps: int = 0
    stopped: str = "steps done"
    loss: str = "l1"  # the distance of holdout_before/after (RefineSection.loss)

    def summary(self) -> dict[str, object]:
        return dict(
            steps=self.steps,
            stopped=self.stopped,
            seconds=round(self.seconds, 1),
            loss=self.loss,
            holdout_loss_before=round(self.holdout_before, 5),
            holdout_loss_after=round(self.holdout_after, 5),
            improved=self.holdout_after < self.holdout_before,
            kept="refined" if self.holdout_after < self.holdout_before else "calibrated start",
        )


def split_holdout(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and the held-out patches."""
    order = np.random.default_rng(seed).permutation(n)
    n_held = min(n - 1, max(1, round(fraction * n)))
    return np.sort(order[n_held:]), np.sort(order[:n_held])


def _block_features(module: nn.Module, store: list[torch.Tensor]) -> list:
    blocks = [m for m in module.modules() if isinstance(m, ResidualAdd) and m.role == "block"]
    return [b.register_forward_hook(lambda _m, _a, o: store.append(o)) for b in blocks]


class _Objective:
    def __init__(self, teacher: nn.Module, student: Student, rc: RefineSection, base: int) -> None:
        self.teacher, self.student, self.rc, self.base = teacher, student, rc, base
        self.f_t: list[torch.Tensor] = []
        self.f_s: list[torch.Tensor] = []
        self.hooks = _block_features(teacher, self.f_t) + _block_features(student.module, self.f_s)

    def close(self) -> None:
        for h in self.hooks:
            h.remove()

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        s, c = self.student, complexity_torch(x)
        s.ctx.image_offset = image_offsets(c, s.thresholds, s.tier_offsets)
        s.ctx.float_stream = float_stream(c, s.thresholds, s.float_residual_tiers)
        return s.module(x)

    def distance(self, out: torch.Tensor, target: torch.Tensor, fp32_err: torch.Tensor | None) -> torch.Tensor:
        """The output distance. ``l1``: L1 on the 0-255 scale; ``psnr``: minus the mean per-patch PSNR vs fp32
        (dB), a flat patch's error weighed like a busy one's; ``drop``: the mean per-patch PSNR drop vs HR
        expected from the error e vs fp32 and fp32's own MSE f vs HR (``fp32_err``): 10 log10(1 + e / f)."""
        if self.rc.loss == "l1":
            return 255.0 * F.l1_loss(out, target)
        mse = (out - target).pow(2).flatten(1).mean(1).clamp_min(1e-12)
        if self.rc.loss == "drop":
            return (10.0 * torch.log10(1.0 + mse / fp32_err.clamp_min(1e-12))).mean()  # type: ignore[union-attr]
        return (10.0 * torch.log10(mse)).mean()

    def holdout(self, held: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]) -> float:
        with torch.no_grad():
            return float(self.distance(self._run(held[0]), held[1], held[2]))

    def loss(self, x: torch.Tensor, phase: str, fp32_err: torch.Tensor | None = None) -> torch.Tensor:
        self.f_t.clear()
        self.f_s.clear()
        with torch.no_grad():
            target = self.teacher(x)
        loss = self.distance(self._run(x), target, fp32_err)
        if self.f_s and self.rc.feature_weight:
            dist = sum(
                (s / s.norm().clamp_min(1e-8) - t / t.norm().clamp_min(1e-8)).flatten(1).norm(dim=1).mean()
                for s, t in zip(self.f_s, self.f_t, strict=True)
            )
            loss = loss + self.rc.feature_weight * dist / len(self.f_s)
        if phase == "bits" and self.student.acts:
            fab = sum(q.bits().mean() for q in self.student.acts.values()) / len(self.student.acts)
            loss = loss + self.rc.bit_weight * torch.relu(fab - self.base)
        return loss


def _optimizers(student: Student, rc: RefineSection) -> dict[str, torch.optim.Optimizer]:
    opts = {}
    for name, params in student.groups(rc.learn_bits, rc.learn_weights).items():
        lr = {"clips": rc.lr_bounds, "bits": rc.lr_layer_bits}[name]
        groups = [{"params": [p for p in params if p is not student.thresholds], "lr": lr}]
        if name == "bits" and student.thresholds is not None:
            groups.append({"params": [student.thresholds], "lr": rc.lr_thresholds})
        opts[name] = torch.optim.Adam([g for g in groups if g["params"]])
    return opts


def refine(
    module: nn.Module,
    plan: QuantPlan,
    patches: np.ndarray,
    rc: RefineSection,
    profile: str,
    seed: int = 0,
    time_budget_s: float | None = None,
    progress: Callable[[int], None] | None = None,
    fp32_err: np.ndarray | None = None,
) -> RefineResult:
    """Learn clips/bits on part of ``patches``; keep the state with the lowest held-out loss (the start
    included). ``fp32_err``: each patch's fp32 MSE against its HR crop (``rc.loss == "drop"`` needs it).

    The time budget covers everything here: a step is only started when it and the held-out check that
    closes it still fit.
    """
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    if rc.loss == "drop" and (fp32_err is None or len(fp32_err) != len(patches)):
        raise ValueError("refinement loss 'drop' needs fp32's error against HR for every patch")
    patches = np.asarray(patches, np.float32)
    err = None if fp32_err is None else torch.from_numpy(np.asarray(fp32_err, np.float32))
    fit_i, held_i = split_holdout(len(patches), rc.holdout_fraction, seed)
    student = make_student(module, plan, profile)
    objective = _Objective(module.eval(), student, rc, plan.bits.base)
    held_x = torch.from_numpy(patches[held_i])
    try:
        with torch.no_grad():
            held = (held_x, module(held_x), None if err is None else err[held_i])
        t_check = time.perf_counter()
        first = objective.holdout(held)
        loop = _Loop(student, objective, _optimizers(student, rc), rc, first, time.perf_counter() - t_check)
        loop.run((patches[fit_i], None if err is None else err[fit_i]), held, seed, t0, time_budget_s, progress)
    finally:
        objective.close()
    loop.restore_best()
    out = _result(student, loop.losses, first, loop.best, time.perf_counter() - t0, loop.steps, loop.stopped)
    return replace(out, loss=rc.loss)


class _Loop:
    """The training loop's state: best held-out loss and parameters so far, steps, why it stopped."""

    def __init__(
        self, student: Student, objective: _Objective, opts: dict, rc: RefineSection, first: float, check_s: float
    ) -> None:
        self.student, self.objective, self.opts, self.rc = student, objective, opts, rc
        self.learned = list(student.parameters())
        self.best, self.best_state = first, [p.detach().clone() for p in self.learned]
        self.check_s, self.losses, self.bad, self.steps, self.stopped = check_s, [], 0, 0, "steps done"

    def check(self, held: tuple) -> bool:
        """Held-out check: keep the state if it is the best so far; False when patience is used up."""
        current = self.objective.holdout(held)
        if current < self.best:
            self.best, self.best_state, self.bad = current, [p.detach().clone() for p in self.learned], 0
            return True
        self.bad += 1
        return self.bad < self.rc.patience

    def run(
        self,
        fit: tuple[np.ndarray, torch.Tensor | None],  # patches, fp32 error vs HR (or None)
        held: tuple,  # patches, fp32 outputs, fp32 error vs HR (or None)
        seed: int,
        t0: float,
        budget: float | None,
        progress: Callable[[int], None] | None,
    ) -> None:
        rc, order = self.rc, list(self.opts)
        rng, per_phase, step_s, unchecked = np.random.default_rng(seed), max(1, rc.steps // rc.phases), 0.0, 0
        for step in range(rc.steps):
            elapsed = time.perf_counter() - t0
            if budget is not None and elapsed + step_s + self.check_s > budget:
                self.stopped = "time budget"
                break
            t_step = time.perf_counter()
            phase = order[(step // per_phase) % len(order)]
            pick = rng.choice(len(fit[0]), min(rc.batch_size, len(fit[0])), replace=False)
            self._step(torch.from_numpy(fit[0][pick]), phase, None if fit[1] is None else fit[1][pick])
            step_s, unchecked, self.steps = max(step_s, time.perf_counter() - t_step), unchecked + 1, step + 1
            if progress:
                progress(step + 1)
            if (step + 1) % per_phase == 0:
                unchecked = 0
                if not self.check(held):
                    self.stopped = "early stop (held-out loss no longer improving)"
                    return
        if unchecked:  # steps after the last phase boundary are judged too
            self.check(held)

    def _step(self, x: torch.Tensor, phase: str, fp32_err: torch.Tensor | None) -> None:
        loss = self.objective.loss(x, phase, fp32_err)
        self.opts[phase].zero_grad(set_to_none=True)
        loss.backward()
        self.opts[phase].step()
        th = self.student.thresholds
        if th is not None:
            with torch.no_grad():
                th.data = torch.sort(th.data).values
        self.losses.append(float(loss.detach()))

    def restore_best(self) -> None:
        with torch.no_grad():
            for p, v in zip(self.learned, self.best_state, strict=True):
                p.copy_(v)


def _result(
    student: Student, losses: list[float], first: float, best: float, seconds: float, steps: int, stopped: str
) -> RefineResult:
    th = student.thresholds
    return RefineResult(
        ranges={
            sites.site(w, sites.INPUT): tuple(float(v.detach()) for v in q.bounds())  # type: ignore[misc]
            for w, q in student.acts.items()
        },
        weight_absmax={w: q.clip().detach().view(-1).numpy().astype(np.float32) for w, q in student.weights.items()},
        layer_offsets={w: int(q.hard_offset().detach()) for w, q in student.acts.items()},
        thresholds=() if th is None else tuple(float(t) for t in th.detach()),
        losses=losses,
        seconds=seconds,
        holdout_before=first,
        holdout_after=best,
        steps=steps,
        stopped=stopped,
    )


def refined_plan(plan: QuantPlan, result: RefineResult, q: QuantSection, deployed: dict[str, np.ndarray]) -> QuantPlan:
    """The plan with the refined ranges (every profile), weight clips, layer bits and thresholds."""
    ranges = {}
    for profile, site_ranges in plan.ranges.items():
        new = dict(site_ranges)
        for name, (lo, hi) in result.ranges.items():
            r = new[name]
            new[name] = ActRange(r.lo if r.nonnegative else lo, hi, r.nonnegative, r.reuse)
        ranges[profile] = new
    bits = replace(
        plan.bits,
        layer_offsets={**plan.bits.layer_offsets, **result.layer_offsets},
        thresholds=result.thresholds or plan.bits.thresholds,
    )
    weights = weight_specs(plan.layers, deployed, q, clips=result.weight_absmax, ranges=ranges)
    return replace(
        plan,
        ranges=ranges,
        bits=bits,
        weights=weights,
        tiers=realize_tiers(plan.layers, bits, ranges),
        provenance=replace(plan.provenance, refinement=result.summary()),
    )
