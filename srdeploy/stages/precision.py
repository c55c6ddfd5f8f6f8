"""Precision step: keep the layers float whose quantization costs the most accuracy per MAC, within a
speed budget (``quant.float_budget``: the share of the quantized MACs that may stay float), in the manner of
Polygraphy's ``debug precision`` and ONNX Runtime's ``qdq_loss_debug`` but measured on the simulation.

Sensitivity (calib/sensitivity.py) is measured on a subset of the calibration patches for the first profile;
the chosen convs become float layers (with the reason in the plan and in ``srdeploy inspect``), and the
calibrate step runs again so that every site plan and range follows the new float/quantized boundary.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from srdeploy.calib.sensitivity import keep_float, layer_sensitivity, sensitivity_table
from srdeploy.quant.plan import QuantPlan
from srdeploy.stages.calibrate import calibrate_step
from srdeploy.stages.context import BuildContext

FLOAT_REASON = "kept float by quant.float_budget: +{gain:.2f} dB output PSNR when float, {share:.1f}% of quantized MACs"


def precision_step(ctx: BuildContext, plan: QuantPlan) -> QuantPlan:
    q = ctx.recipe.quant
    if q.float_budget <= 0 or not plan.tiers:
        return plan
    profile = plan.profiles[0]
    n = min(q.sensitivity_patches, len(ctx.patches))
    images = [torch.from_numpy(ctx.patches[i : i + 4].copy()) for i in range(0, n, 4)]
    with ctx.stage("precision", "per-layer sensitivity", total=None):
        full_db, table = layer_sensitivity(ctx.model.module, plan, images, profile=profile)
        chosen = keep_float(table, q.float_budget, q.float_min_gain_db)
    by_name = {x.name: x for x in table}
    ctx.reports["sensitivity"] = dict(
        profile=profile, patches=n, float_budget=q.float_budget, kept_float=chosen, **sensitivity_table(full_db, table)
    )
    if not chosen:
        return plan
    layers = tuple(
        replace(
            x,
            quantized=False,
            reason=FLOAT_REASON.format(gain=by_name[x.weight].float_gain_db, share=100 * by_name[x.weight].macs_share),
        )
        if x.weight in chosen
        else x
        for x in plan.layers
    )
    return calibrate_step(ctx, replace(plan, layers=layers, weights={}, ranges={}, tiers=()))
