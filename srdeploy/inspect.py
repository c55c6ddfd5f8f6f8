"""`srdeploy inspect`: the plan as tables (per layer: role, bits, ranges, mask, why)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from srdeploy.buildfolder import MANIFEST, BuildFolder
from srdeploy.errors import PlanError
from srdeploy.plan_check import load_plan_checked
from srdeploy.quant import sites
from srdeploy.quant.plan import QuantPlan


def _plan_path(target: Path) -> Path:
    """plan.json of a build folder (checksums verified like `validate`), or a plan.json as given."""
    if not target.exists():
        raise PlanError(f"not found: {target}", "pass a build folder or a plan.json")
    if target.is_dir():
        BuildFolder(target).verify()
        return target / "plan.json"
    if (target.parent / MANIFEST).is_file():
        BuildFolder(target.parent).verify()
    return target


def inspect_table(target: Path, all_layers: bool = True) -> list[object]:
    """Rich tables; every value from the plan is escaped (layer names may hold brackets)."""
    from rich.table import Table

    plan: QuantPlan = load_plan_checked(_plan_path(Path(target)))
    tables: list[object] = []
    m = plan.model
    head = Table(
        title=escape(f"plan: {m.get('name')} ({m.get('arch')} x{m.get('scale')}), method {plan.meta.get('method')}")
    )
    head.add_column("key")
    head.add_column("value")
    for k in ("weight_bits", "act_bits", "weight_method", "quantize_roles", "calibration_patches", "recipe"):
        head.add_row(k, escape(str(plan.meta.get(k))))
    head.add_row("tiers", escape(", ".join(f"{t.index}:{t.name}" for t in plan.tiers)))
    if plan.selector:
        head.add_row("selector", escape(f"{plan.selector.statistic} thresholds {plan.selector.thresholds}"))
    tables.append(head)
    for tier in plan.tiers:
        t = Table(title=escape(f"tier {tier.index} ({tier.name}): layers"))
        for c in ("layer", "role", "W bits", "trt input", "ort input", "mask", "why"):
            t.add_column(c)
        for x in plan.layers:
            if not x.quantized and not all_layers:
                continue
            w = plan.weights.get(x.weight)
            site = sites.site(x.weight, sites.INPUT)
            trt = tier.activations.get("trt", {}).get(site)
            ort = tier.activations.get("ort", {}).get(site)
            mask = plan.masks.get(x.weight)
            cells = (x.module, x.role, str(w.bits) if w else "float", _fmt(trt), _fmt(ort))
            t.add_row(*(escape(c) for c in (*cells, f"{mask.n}:{mask.m}" if mask else "", x.reason)))
        tables.append(t)
        skips = Table(title=f"tier {tier.index}: residual skips and conv outputs")
        for c in ("site", "trt", "ort"):
            skips.add_column(c)
        names = sorted({s for p in tier.activations.values() for s in p if not s.endswith("@input")})
        for s in names:
            trt, ort = (_fmt(tier.activations.get(p, {}).get(s)) for p in ("trt", "ort"))
            skips.add_row(escape(s), escape(trt), escape(ort))
        tables.append(skips)
    return tables


def _fmt(spec: object) -> str:
    if spec is None:
        return "–"
    from srdeploy.quant.spec import QuantSpec

    assert isinstance(spec, QuantSpec)
    kind = "s" if spec.signed else "u"
    return f"{kind}{spec.bits} [{spec.lo:.3g}, {spec.hi:.3g}] s={float(spec.scale):.3g} zp={int(spec.zero_point)}"
