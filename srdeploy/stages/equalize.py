"""Equalize step (DAQ's static form): per-channel scales from the calibration statistics, as plan data."""

from __future__ import annotations

from dataclasses import replace

from srdeploy.calib.equalize import equalization_groups
from srdeploy.calib.observers import observe
from srdeploy.quant import sites
from srdeploy.quant.apply import apply_plan
from srdeploy.quant.plan import QuantPlan
from srdeploy.stages.context import BuildContext


def equalize_step(ctx: BuildContext, plan: QuantPlan) -> QuantPlan:
    q = ctx.recipe.quant
    if not q.equalize_enabled:
        return plan
    with ctx.stage("equalize", "DAQ channel equalization"):
        quantized = {x.weight for x in plan.layers if x.quantized}
        names = [sites.site(w, sites.INPUT) for w in sorted(quantized)]
        module = apply_plan(ctx.model.module, plan)
        stats = observe(module, names, ctx.patches, ctx.recipe.calib.batch_size, seed=ctx.recipe.seed)
        bits = {x.weight: (q.act_bits if x.role == "body" else 8) for x in plan.layers if x.quantized}
        groups, report = equalization_groups(ctx.fp32, stats, quantized, bits, q.equalize_strength)
    ctx.reports["equalization"] = report
    return replace(plan, equalization=groups)
