"""Sparsity step: structural pruning (channel groups) and N:M masks, as plan data."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from srdeploy.calib.exclude import apply_exclusions
from srdeploy.calib.layers import layer_infos, macs_per_lr_pixel
from srdeploy.models.base import SRModel
from srdeploy.quant.apply import apply_plan
from srdeploy.quant.plan import QuantPlan
from srdeploy.sparsity.api import MASK_STEPS, choose_masks, choose_structure
from srdeploy.sparsity.filter_recovery import recover
from srdeploy.stages.context import BuildContext


def sparsity_step(ctx: BuildContext, plan: QuantPlan) -> QuantPlan:
    cfg = ctx.recipe.sparsity
    if cfg.policy == "none":
        return plan
    with ctx.stage("sparsity", f"sparsity ({cfg.policy})", total=1 + MASK_STEPS) as advance:
        structure, structure_report = choose_structure(ctx.loaded, cfg)
        advance(1)
        if structure and cfg.recovery:
            structure, structure_report["recovery"] = recover(ctx.model, structure, ctx.patches)
        plan = replace(plan, structure=structure)
        pruned = replace(ctx.model, module=apply_plan(ctx.model.module, plan))
        if structure:  # the deployed convs are smaller: their facts (channels, MACs) change
            q = ctx.recipe.quant
            layers = layer_infos(pruned, [x.weight for x in plan.layers], q.quantize_roles)
            plan = replace(plan, layers=apply_exclusions(layers, q.exclude, ctx.graph))
            structure_report["size"] = size_before_after(ctx.model, pruned)
        masks, mask_report = choose_masks(
            pruned, plan.layers, ctx.patches, cfg, ctx.recipe.seed, lambda k: advance(1 + k)
        )
    ctx.reports["sparsity"] = sparsity_summary(structure_report, mask_report)
    ctx.reports["sparsity_full"] = {"structure": structure_report, "masks": mask_report}
    return replace(plan, masks=masks)


def size_before_after(dense: SRModel, pruned: SRModel) -> dict[str, float]:
    """MACs per LR pixel (all convs, and the body's) and parameter counts of the dense and pruned networks."""
    out: dict[str, float] = {}
    for key, model in (("before", dense), ("after", pruned)):
        macs = macs_per_lr_pixel(model.module)
        roles = model.layer_roles()
        out[f"macs_per_lr_pixel_{key}"] = sum(macs.values())
        out[f"body_macs_per_lr_pixel_{key}"] = sum(v for k, v in macs.items() if roles.get(k, "body") == "body")
        out[f"params_{key}"] = sum(p.numel() for p in model.module.parameters())
    out["macs_ratio"] = out["macs_per_lr_pixel_after"] / out["macs_per_lr_pixel_before"]
    out["params_ratio"] = out["params_after"] / out["params_before"]
    return out


def sparsity_summary(structure: dict[str, Any], masks: dict[str, Any]) -> dict[str, Any]:
    """The part of the sparsity reports shown in report.json/md (the full one is sparsity.json)."""
    out: dict[str, Any] = {"policy": masks.get("policy") or structure.get("policy")}
    out["macs"] = masks.get("macs")
    out["eligibility"] = masks.get("eligibility", {}).get("summary")
    out["bias_correction"] = {k: v for k, v in masks.get("bias_correction", {}).items() if k != "layers"}
    if masks.get("refit_summary"):
        out["refit"] = masks["refit_summary"]
    out["layers"] = [
        {k: r.get(k) for k in ("weight", "pattern", "density", "reason") if k in r}
        for r in masks.get("layers", [])
        if r.get("pattern")
    ]
    if structure.get("blocks_pruned"):
        out["structure"] = {k: v for k, v in structure.items() if k not in ("blocks", "recovery")}
    return out
