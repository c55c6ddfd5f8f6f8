"""Sparsity step: structural pruning (channel groups) and N:M masks, as plan data."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from srdeploy.calib.exclude import apply_exclusions
from srdeploy.calib.layers import layer_infos
from srdeploy.quant.apply import apply_plan
from srdeploy.quant.plan import QuantPlan
from srdeploy.sparsity.api import MASK_STEPS, choose_masks, choose_structure
from srdeploy.stages.context import BuildContext


def sparsity_step(ctx: BuildContext, plan: QuantPlan) -> QuantPlan:
    cfg = ctx.recipe.sparsity
    if cfg.policy == "none":
        return plan
    with ctx.stage("sparsity", f"sparsity ({cfg.policy})", total=1 + MASK_STEPS) as advance:
        structure, structure_report = choose_structure(ctx.loaded, cfg)
        advance(1)
        plan = replace(plan, structure=structure)
        pruned = replace(ctx.model, module=apply_plan(ctx.model.module, plan))
        if structure:  # the deployed convs are smaller: their facts (channels, MACs) change
            q = ctx.recipe.quant
            layers = layer_infos(pruned, [x.weight for x in plan.layers], q.quantize_roles)
            plan = replace(plan, layers=apply_exclusions(layers, q.exclude, ctx.graph))
        masks, mask_report = choose_masks(
            pruned, plan.layers, ctx.patches, cfg, ctx.recipe.seed, lambda k: advance(1 + k)
        )
    ctx.reports["sparsity"] = sparsity_summary(structure_report, mask_report)
    ctx.reports["sparsity_full"] = {"structure": structure_report, "masks": mask_report}
    return replace(plan, masks=masks)


def sparsity_summary(structure: dict[str, Any], masks: dict[str, Any]) -> dict[str, Any]:
    """The part of the sparsity reports shown in report.json/md (the full one is sparsity.json)."""
    out: dict[str, Any] = {"policy": masks.get("policy") or structure.get("policy")}
    out["macs"] = masks.get("macs")
    out["eligibility"] = masks.get("eligibility", {}).get("summary")
    out["bias_correction"] = {k: v for k, v in masks.get("bias_correction", {}).items() if k != "layers"}
    out["layers"] = [
        {k: r.get(k) for k in ("weight", "pattern", "density", "reason") if k in r}
        for r in masks.get("layers", [])
        if r.get("pattern")
    ]
    if structure.get("blocks_pruned"):
        out["structure"] = {k: v for k, v in structure.items() if k != "blocks"}
    return out
