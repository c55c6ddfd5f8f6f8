"""Refine step: AdaBM-style label-free refinement of the calibrated plan against the fp32 outputs, on its own
seeded patches, inside what is left of ``calib.time_budget_s``. A refinement that does not lower the held-out
loss changes nothing but the record of it (plan provenance, report)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from srdeploy.calib.refine import refine, refined_plan
from srdeploy.data.calib_inputs import calib_patches
from srdeploy.data.sets import sr_patches
from srdeploy.quant.apply import deployed_weights
from srdeploy.quant.plan import QuantPlan
from srdeploy.stages.context import BuildContext

CALIBRATION_STAGES = ("equalize", "calibrate")


def refine_step(ctx: BuildContext, plan: QuantPlan) -> QuantPlan:
    r = ctx.recipe
    rc = r.quant.refine
    budget = r.calib.time_budget_s
    left = None if budget is None else budget - sum(ctx.seconds.get(k, 0.0) for k in CALIBRATION_STAGES)
    if rc.steps == 0 or (left is not None and left <= 0):
        skipped = "no steps" if rc.steps == 0 else "no time left in calib.time_budget_s"
        ctx.reports["calibration_time"] = time_report(ctx, budget, skipped)
        if rc.steps == 0:
            return plan
        ctx.reports["refinement"] = dict(steps=0, stopped=skipped, kept="calibrated start")
        return replace(plan, provenance=replace(plan.provenance, refinement=ctx.reports["refinement"]))
    fp32_err = None
    if rc.loss == "drop":  # the recipe check made sure the calibration set has HR images: the same LR crops
        patches, hr = sr_patches(r.calib.source, ctx.model.scale, rc.patch_size, rc.patches, r.seed + 1)
        fp32_err = fp32_errors(ctx.model.module, patches, hr)
    else:
        patches = calib_patches(
            r.calib, ctx.model.scale, rc.patch_size, rc.patches, r.seed + 1, "quant.refine.patch_size"
        )
    with ctx.stage("refine", "refine (label-free, vs fp32)", total=rc.steps) as advance:
        # the student simulates the recipe's first profile (its grid kinds); the result serves every profile
        result = refine(ctx.model.module, plan, patches, rc, r.export.profiles[0], r.seed, left, advance, fp32_err)
        if result.holdout_after < result.holdout_before:
            plan = refined_plan(plan, result, r.quant, deployed_weights(ctx.model.module, plan))
        else:  # never worse than the start: keep the calibrated plan, record what was tried
            plan = replace(plan, provenance=replace(plan.provenance, refinement=result.summary()))
    ctx.reports["refinement"] = result.summary()
    ctx.reports["calibration_time"] = time_report(ctx, budget, None)
    return plan


def fp32_errors(module: torch.nn.Module, lr: np.ndarray, hr: np.ndarray, chunk: int = 16) -> np.ndarray:
    """Each patch's MSE of the fp32 output (clipped to [0, 1]) against its HR crop (N, H, W, 3)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(lr), chunk):
            sr = module.eval()(torch.from_numpy(lr[i : i + chunk])).clamp(0, 1).permute(0, 2, 3, 1).numpy()
            out.append(((sr - hr[i : i + chunk]) ** 2).reshape(len(sr), -1).mean(1))
    return np.concatenate(out).astype(np.float32)


def time_report(ctx: BuildContext, budget: float | None, refinement_skipped: str | None) -> dict[str, object]:
    """Seconds spent by calibration (equalize + calibrate) and refinement, against the recipe's budget."""
    calib = sum(ctx.seconds.get(k, 0.0) for k in CALIBRATION_STAGES)
    refine_s = ctx.seconds.get("refine", 0.0)
    out: dict[str, object] = dict(
        calibration_s=round(calib, 2),
        refinement_s=round(refine_s, 2),
        total_s=round(calib + refine_s, 2),
        budget_s=budget,
        within_budget=None if budget is None else calib + refine_s <= budget,
    )
    if refinement_skipped:
        out["refinement_skipped"] = refinement_skipped
    return out
