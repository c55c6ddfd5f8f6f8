"""Calibrate step: observe the network as deployed (apply_plan), allocate bits, fit ranges, realize the
grids of every tier and profile, fit the weight grids."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from torch import nn

from srdeploy.calib import bits as bit_alloc
from srdeploy.calib.cache import CalibrationCache, check_fits
from srdeploy.calib.calibrate import allocate_bits, estimate_ranges, weight_specs
from srdeploy.calib.layer_bits import input_site_errors, offsets_from_errors, predicted_error, representative_patches
from srdeploy.calib.observers import SiteStats, observe
from srdeploy.calib.site_plan import ProfileSites, plan_sites
from srdeploy.calib.tiers import realize_tiers
from srdeploy.profiles import get_profile
from srdeploy.quant import sites
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
            offsets = measured_layer_offsets(ctx, plan, module, stats, site_plan)
            bits = allocate_bits(q, stats, plan.layers, ctx.patches, layer_offsets=offsets)
            ranges = estimate_ranges(stats, site_plan, plan.layers, bits, q)
        weights = weight_specs(plan.layers, deployed_weights(ctx.model.module, plan), q, ranges=ranges)
    return replace(plan, weights=weights, bits=bits, ranges=ranges, tiers=realize_tiers(plan.layers, bits, ranges))


def measured_layer_offsets(
    ctx: BuildContext,
    plan: QuantPlan,
    module: nn.Module,
    stats: Mapping[str, SiteStats],
    site_plan: Mapping[str, ProfileSites],
) -> dict[str, int] | None:
    """``quant.adaptive.layer_map: sensitivity``: the layer-to-bit map from each body conv input's measured
    output error at the base bits (calib/layer_bits.py), on the first profile's grids, on
    ``quant.adaptive.layer_patches`` calibration patches; None otherwise."""
    q = ctx.recipe.quant
    a = q.adaptive
    if not (a.enabled and a.layer_bits and a.layer_map == "sensitivity"):
        return None
    start = bit_alloc.fixed(q.act_bits, q.weight_bits, q.skip_bits)
    profile = plan.profiles[0]
    static_ranges = estimate_ranges(stats, site_plan, plan.layers, start, q)
    specs = realize_tiers(plan.layers, start, static_ranges)[0].sites(profile)
    body = {x.weight: sites.site(x.weight, sites.INPUT) for x in plan.layers if x.quantized and x.role == "body"}
    measured = representative_patches(ctx.patches, a.layer_patches)
    errors = input_site_errors(module, {w: (s, specs[s]) for w, s in body.items() if s in specs}, measured)
    offsets = offsets_from_errors(errors, q.act_bits, a.layer_extra_bits, a.layer_min_offset)
    # most sensitive first, as output PSNR vs float (peak 1); the last row: the noise model's total
    rows = {w: dict(psnr_alone_db=_db(e), bits=q.act_bits + offsets.get(w, 0)) for w, e in _by_error(errors)}
    rows["all (noise model)"] = dict(
        psnr_alone_db=_db(predicted_error(errors, {})), psnr_mapped_db=_db(predicted_error(errors, offsets))
    )
    ctx.reports["layer_bits"] = rows
    return offsets


def _db(mse: float) -> float:
    return round(10 * math.log10(1 / mse), 2) if mse > 0 else math.inf


def _by_error(errors: Mapping[str, float]) -> list[tuple[str, float]]:
    return sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))


def cached_ranges(cache: CalibrationCache, site_plan: Mapping[str, ProfileSites]) -> dict[str, dict[str, ActRange]]:
    """The cache's ranges for this build's sites; a reused grid follows this build's site plan."""
    return {
        p: {s: ActRange(0.0, 0.0, reuse=ps.reuse[s]) if s in ps.reuse else cache.ranges[p][s] for s in ps.sites}
        for p, ps in site_plan.items()
    }
