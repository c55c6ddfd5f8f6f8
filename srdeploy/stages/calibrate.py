"""Calibrate step: observe the network as deployed (apply_plan), allocate bits, fit ranges, realize the
grids of every tier and profile, fit the weight grids."""

from __future__ import annotations

from dataclasses import replace

from srdeploy.calib.calibrate import allocate_bits, estimate_ranges, weight_specs
from srdeploy.calib.observers import observe
from srdeploy.calib.site_plan import plan_sites
from srdeploy.calib.tiers import realize_tiers
from srdeploy.profiles import get_profile
from srdeploy.quant.apply import apply_plan, deployed_weights
from srdeploy.quant.plan import QuantPlan
from srdeploy.stages.context import BuildContext


def calibrate_step(ctx: BuildContext, plan: QuantPlan) -> QuantPlan:
    q, r = ctx.recipe.quant, ctx.recipe
    profiles = [get_profile(p) for p in plan.profiles]
    site_plan = plan_sites(plan.layers, ctx.graph, profiles, q.residual_skips)
    names = sorted({s for ps in site_plan.values() for s in ps.sites if s not in ps.reuse})
    with ctx.stage("calibrate", "calibrate", total=len(ctx.patches)) as advance:
        module = apply_plan(ctx.model.module, plan)
        stats = observe(module, names, ctx.patches, r.calib.batch_size, seed=r.seed, progress=advance)
        bits = allocate_bits(q, stats, plan.layers, ctx.patches)
        ranges = estimate_ranges(stats, site_plan, plan.layers, bits, q)
        weights = weight_specs(plan.layers, deployed_weights(ctx.model.module, plan), q, ranges=ranges)
    return replace(plan, weights=weights, bits=bits, ranges=ranges, tiers=realize_tiers(plan.layers, bits, ranges))
