"""The files of a build folder besides the graphs: plan, model as trained, recipe, tier selector, reports."""

from __future__ import annotations

import json
from typing import Any

from srdeploy.buildfolder import BuildFolder
from srdeploy.fsutil import atomic_write_text
from srdeploy.models.deploy_form import save_deploy_model
from srdeploy.quant.plan import QuantPlan
from srdeploy.quant.plan_io import save_plan
from srdeploy.size_rules import NO_RULES, SizeRules
from srdeploy.stages.context import BuildContext
from srdeploy.stages.emit import graph_file


def write_build_files(ctx: BuildContext, plan: QuantPlan, folder: BuildFolder) -> None:
    save_plan(plan, folder.plan)
    save_deploy_model(ctx.model, folder.root)
    atomic_write_text(folder.recipe, ctx.recipe.to_yaml())
    write_tiers_json(folder, plan, ctx.model.size_rules)
    if "sparsity_full" in ctx.reports:
        text = json.dumps(ctx.reports["sparsity_full"], indent=1, default=str) + "\n"
        atomic_write_text(folder.root / "sparsity.json", text)


def write_tiers_json(folder: BuildFolder, plan: QuantPlan, rules: SizeRules = NO_RULES) -> None:
    """The selector apps apply: statistic, thresholds, which file serves which tier (exported profiles only),
    and the input sizes the graphs accept (``size_rules``, only when not every size runs as it is)."""
    from srdeploy.validate import cost

    tiers = [
        dict(
            index=t.index,
            name=t.name,
            fab=cost.fab(plan, {t.index: 1.0}),
            files={p: str(graph_file(folder, plan, p, t.index).relative_to(folder.root)) for p in plan.profiles},
        )
        for t in plan.tiers
    ]
    sel = plan.selector
    doc = dict(
        scale=int(plan.model.scale),
        **({} if rules.trivial else {"size_rules": rules.to_json()}),
        default_tier=plan.default_tier,
        selector=None
        if sel is None
        else dict(statistic=sel.statistic, thresholds=list(sel.thresholds), tiers=list(sel.tiers)),
        tiers=tiers,
    )
    atomic_write_text(folder.tiers_json, json.dumps(doc, indent=1) + "\n")


def report_header(ctx: BuildContext) -> dict[str, Any]:
    r, m = ctx.recipe, ctx.model
    return dict(
        recipe=dict(name=r.name, digest=r.digest),
        model=dict(name=m.name, arch=m.arch, scale=m.scale),
        dataset=r.validate_.dataset,
    )
