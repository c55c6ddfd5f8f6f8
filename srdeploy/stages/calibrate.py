"""Calibrate step: observe the network as deployed (apply_plan), allocate bits, fit ranges, realize the
grids of every tier and profile, fit the weight grids."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from srdeploy.calib.cache import CalibrationCache, check_fits
from srdeploy.calib.calibrate import allocate_bits, estimate_ranges, weight_specs
from srdeploy.calib.observers import observe
from srdeploy.calib.site_plan import ProfileSites, plan_sites
from srdeploy.calib.tiers import realize_tiers
from srdeploy.profiles import get_profile
from srdeploy.quant.apply import apply_plan, deployed_weights
from srdeploy.quant.plan import ActRange, QuantPlan
from srdeploy.stages.context import BuildContext


def calibrate_step(ctx: BuildContext, plan: QuantPlan) -> QuantPlan:
    q, r = ctx.recipe.quant, ctx.recipe
    profiles = [get_profile(p) for p in plan.profiles]
    site_plan = plan_sites(plan.layers, ctx.graph, profiles, q.residual_skips)
    names = sorted({s for ps in site_plan.values() for s in ps.sites if s not in ps.reuse and s not in ps.fixed})
    cache = ctx.calibration_cache
    if cache is not None:
        check_fits(cache, site_plan, q, plan)
        bits, ranges = cache.bits, cached_ranges(cache, site_plan)
        ctx.reports["calibration_cache"] = dict(imported=str(cache.path), sites=len(names))
        ctx.progress.log(f"calibration ranges from {cache.path} (range estimation skipped)")
    with ctx.stage("calibrate", "calibrate" if cache is None else "weight grids", total=len(ctx.patches)) as advance:
        if cache is None:
            module = apply_plan(ctx.model.module, plan)
            stats = observe(module, names, ctx.patches, r.calib.batch_size, seed=r.seed, progress=advance)
            bits = allocate_bits(q, stats, plan.layers, ctx.patches)
            ranges = estimate_ranges(stats, site_plan, plan.layers, bits, q)
        weights = weight_specs(plan.layers, deployed_weights(ctx.model.module, plan), q, ranges=ranges)
    return replace(plan, weights=weights, bits=bits, ranges=ranges, tiers=realize_tiers(plan.layers, bits, ranges))


def cached_ranges(cache: CalibrationCache, site_plan: Mapping[str, ProfileSites]) -> dict[str, dict[str, ActRange]]:
    """The cache's ranges for this build's sites; a reused grid follows this build's site plan."""
    return {
        p: {s: ActRange(0.0, 0.0, reuse=ps.reuse[s]) if s in ps.reuse else cache.ranges[p][s] for s in ps.sites}
        for p, ps in site_plan.items()
    }
