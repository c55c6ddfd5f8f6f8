"""Float-tier step (``quant.float_tier.max_drop_db`` > 0): the flattest images and tiles go to the unquantized
model, the rest to the bit tiers, by the selector statistic (calib/float_tier.py says why and how the
threshold is chosen). It runs last among the plan steps, on the final ranges, and changes only the bit map's
``float_below`` and the tiers (one more, named "float", with no grid in any profile).

The threshold is measured on LR/HR patches cut with their own seed from the calibration source (never the
validation set); the report records it, the share of calibration patches below it and their drops.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from srdeploy.calib.complexity import complexity
from srdeploy.calib.float_tier import candidates, choose_threshold, patch_drops
from srdeploy.calib.tiers import realize_tiers
from srdeploy.data.sets import sr_patches
from srdeploy.errors import PlanError
from srdeploy.quant.plan import QuantPlan
from srdeploy.quant.simulate import simulate
from srdeploy.stages.context import BuildContext, calib_source

SEED_OFFSET = 2  # calibration patches use the recipe's seed, refinement seed + 1


def float_tier_step(ctx: BuildContext, plan: QuantPlan) -> QuantPlan:
    ft, r = ctx.recipe.quant.float_tier, ctx.recipe
    if ft.max_drop_db <= 0 or not plan.tiers:
        return plan
    if not r.calib.has_hr:  # recipe.py refuses this when the recipe loads; never measure drops against no HR
        raise PlanError(
            "quant.float_tier needs HR images behind the calibration patches; calib.degradation none and "
            "calib.tensors have none",
            "set quant.float_tier.max_drop_db to 0",
        )
    profile = plan.profiles[0]
    with ctx.stage("float_tier", "float tier threshold", total=None):
        lr, hr = sr_patches(calib_source(r), ctx.model.scale, r.calib.patch_size, ft.patches, r.seed + SEED_OFFSET)
        cx = complexity(lr)
        idx = candidates(cx, ft.max_share)
        deployed = simulate(ctx.model, plan, profile, plan.default_tier).eval()
        drops = patch_drops(ctx.model.module.eval(), deployed, lr[idx], hr[idx], ctx.model.scale)
        choice = choose_threshold(cx[idx], drops, len(lr), ft.max_drop_db, ft.max_share)
    below = cx[idx] < choice.threshold if choice.threshold is not None else np.zeros(len(idx), dtype=bool)
    ctx.reports["float_tier"] = dict(
        threshold=None if choice.threshold is None else round(choice.threshold, 4),
        statistic=plan.bits.statistic,
        target_drop_db=ft.max_drop_db,
        patches=len(lr),
        measured=choice.candidates,
        window=choice.window,
        share_below=round(choice.share, 4),
        mean_drop_below_db=round(float(drops[below].mean()), 4) if below.any() else None,
        mean_drop_measured_above_db=round(float(drops[~below].mean()), 4) if (~below).any() else None,
        profile=profile,
    )
    if choice.threshold is None:
        return plan
    bits = replace(plan.bits, float_below=choice.threshold)
    return replace(plan, bits=bits, tiers=realize_tiers(plan.layers, bits, plan.ranges))
