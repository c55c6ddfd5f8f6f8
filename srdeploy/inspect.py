"""`srdeploy inspect`: the plan as tables (per layer: role, bits, ranges, mask, why)."""

from __future__ import annotations

from pathlib import Path

from srdeploy.quant import sites
from srdeploy.quant.plan import QuantPlan, load_plan


def _plan_path(target: Path) -> Path:
    return target / "plan.json" if target.is_dir() else target


def inspect_table(target: Path, all_layers: bool = True) -> list[object]:
    from rich.table import Table

    plan: QuantPlan = load_plan(_plan_path(Path(target)))
    tables: list[object] = []
    m = plan.model
    head = Table(title=f"plan: {m.get('name')} ({m.get('arch')} x{m.get('scale')}), method {plan.meta.get('method')}")
    head.add_column("key")
    head.add_column("value")
    for k in ("weight_bits", "act_bits", "weight_method", "quantize_roles", "calibration_patches", "recipe"):
        head.add_row(k, str(plan.meta.get(k)))
    head.add_row("tiers", ", ".join(f"{t.index}:{t.name}" for t in plan.tiers))
    if plan.selector:
        head.add_row("selector", f"{plan.selector.statistic} thresholds {plan.selector.thresholds}")
    tables.append(head)
    for tier in plan.tiers:
        t = Table(title=f"tier {tier.index} ({tier.name}): layers")
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
            t.add_row(
                x.module,
                x.role,
                str(w.bits) if w else "float",
                _fmt(trt),
                _fmt(ort),
                f"{mask.n}:{mask.m}" if mask else "",
                x.reason,
            )
        tables.append(t)
        skips = Table(title=f"tier {tier.index}: residual skips and conv outputs")
        for c in ("site", "trt", "ort"):
            skips.add_column(c)
        names = sorted({s for p in tier.activations.values() for s in p if not s.endswith("@input")})
        for s in names:
            skips.add_row(s, _fmt(tier.activations.get("trt", {}).get(s)), _fmt(tier.activations.get("ort", {}).get(s)))
        tables.append(skips)
    return tables


def _fmt(spec: object) -> str:
    if spec is None:
        return "–"
    from srdeploy.quant.spec import QuantSpec

    assert isinstance(spec, QuantSpec)
    kind = "s" if spec.signed else "u"
    return f"{kind}{spec.bits} [{spec.lo:.3g}, {spec.hi:.3g}] s={float(spec.scale):.3g} zp={int(spec.zero_point)}"
