"""Refine step: AdaBM-style label-free refinement of the calibrated plan against the fp32 outputs, on its own
seeded patches, inside what is left of ``calib.time_budget_s``."""

from __future__ import annotations

from srdeploy.calib.refine import refine, refined_plan
from srdeploy.data.sets import lr_patches
from srdeploy.quant.apply import deployed_weights
from srdeploy.quant.plan import QuantPlan
from srdeploy.stages.context import BuildContext, calib_source


def refine_step(ctx: BuildContext, plan: QuantPlan) -> QuantPlan:
    r = ctx.recipe
    rc = r.quant.refine
    if rc.steps == 0:
        return plan
    budget = r.calib.time_budget_s
    if budget is not None:
        budget = max(0.0, budget - ctx.seconds.get("calibrate", 0.0) - ctx.seconds.get("equalize", 0.0))
    patches = lr_patches(calib_source(r), ctx.model.scale, rc.patch_size, rc.patches, r.seed + 1)
    with ctx.stage("refine", "refine (label-free, vs fp32)", total=rc.steps) as advance:
        # the student simulates the recipe's first profile (its grid kinds); the result serves every profile
        result = refine(ctx.model.module, plan, patches, rc, r.export.profiles[0], r.seed, budget, advance)
        refined = refined_plan(plan, result, r.quant, deployed_weights(ctx.model.module, plan))
    ctx.reports["refinement"] = result.summary()
    return refined
