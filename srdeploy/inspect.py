"""`srdeploy inspect`: the plan as tables (per layer: role, bits, ranges per profile, mask, why). No torch."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from srdeploy.buildfolder import MANIFEST, BuildFolder
from srdeploy.errors import PlanError
from srdeploy.quant import sites
from srdeploy.quant.plan import QuantPlan
from srdeploy.quant.plan_io import load_plan
from srdeploy.quant.spec import QuantSpec


def _plan_path(target: Path) -> Path:
    """plan.json of a build folder (checksums verified like `validate`), or a plan.json as given."""
    if not target.exists():
        raise PlanError(f"not found: {target}", "pass a build folder or a plan.json")
    if target.is_dir():
        BuildFolder(target).verify()
        return target / "plan.json"
    if target.suffix != ".json":
        raise PlanError(
            f"{target} is not a build folder or a plan.json", "pass the folder `srdeploy build` wrote, or its plan.json"
        )
    if (target.parent / MANIFEST).is_file():
        BuildFolder(target.parent).verify()
    return target


def summary_table(plan: QuantPlan) -> object:
    from rich.table import Table

    m, p = plan.model, plan.provenance
    head = Table(title=escape(f"plan: {m.name} ({m.arch} x{m.scale})"))
    head.add_column("key")
    head.add_column("value")
    rows = dict(
        recipe=p.recipe,
        method=p.method,
        weights=f"{plan.bits.weight_bits} bit ({p.weight_method})",
        activations=f"{plan.bits.base} bit base",
        calibration_patches=str(p.calibration_patches),
        profiles=", ".join(plan.profiles),
        tiers=", ".join(f"{t.index}:{t.name}" for t in plan.tiers),
    )
    if plan.selector:
        rows["selector"] = f"{plan.selector.statistic} thresholds {[round(t, 3) for t in plan.selector.thresholds]}"
    if plan.structure:
        rows["pruned channels"] = str(sum(len(g.removed) for g in plan.structure))
    if plan.equalization:
        rows["equalized groups"] = str(len(plan.equalization))
    if p.refinement:
        rows["refinement"] = ", ".join(f"{k} {v}" for k, v in p.refinement.items())
    for k, v in rows.items():
        head.add_row(escape(k), escape(v))
    return head


def inspect_table(target: Path, all_layers: bool = True) -> list[object]:
    """Rich tables; every value from the plan is escaped (layer names may hold brackets)."""
    from rich.table import Table

    plan = load_plan(_plan_path(Path(target)))
    tables: list[object] = [summary_table(plan)]
    for tier in plan.tiers:
        t = Table(title=escape(f"tier {tier.index} ({tier.name}): conv inputs"))
        for c in ("layer", "role", "W", *plan.profiles, "mask", "why"):
            t.add_column(c, overflow="fold")
        for x in plan.layers:
            if not x.quantized and not all_layers:
                continue
            w = plan.weights.get(x.weight)
            site = sites.site(x.weight, sites.INPUT)
            acts = [_fmt(tier.activations.get(p, {}).get(site)) for p in plan.profiles]
            mask = plan.masks.get(x.weight)
            cells = (
                x.module,
                x.role,
                str(w.bits) if w else "float",
                *acts,
                f"{mask.n}:{mask.m}" if mask else "",
                x.reason,
            )
            t.add_row(*(escape(c) for c in cells))
        tables.append(t)
        names = sorted({s for p in tier.activations.values() for s in p if not s.endswith("@input")})
        if names:
            skips = Table(title=f"tier {tier.index}: residual skips and conv outputs")
            for c in ("site", *plan.profiles):
                skips.add_column(c, overflow="fold")
            for s in names:
                skips.add_row(escape(s), *(escape(_fmt(tier.activations.get(p, {}).get(s))) for p in plan.profiles))
            tables.append(skips)
    return tables


def _fmt(spec: QuantSpec | None) -> str:
    if spec is None:
        return "–"
    kind = "s" if spec.signed else "u"
    return f"{kind}{spec.bits} [{spec.lo:.3g}, {spec.hi:.3g}] zp={int(spec.zero_point)}"
