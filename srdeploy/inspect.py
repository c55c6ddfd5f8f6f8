"""`srdeploy inspect`: the plan as tables (per layer: role, bits, ranges per profile, mask, why) or as
JSON (``inspect_data``). No torch: it reads plan.json/plan.npz only.

Tables fit a 100-column terminal: layer and site names are never cut (they tell the convs of a block
apart), ranges are short (``u8 0…1.23``, the zero point only where it is not 0), and the reason wraps.
Sites sort naturally (body.2 before body.10); layers keep the plan's (execution) order.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.markup import escape

from srdeploy.buildfolder import MANIFEST, BuildFolder
from srdeploy.errors import PlanError
from srdeploy.quant import sites
from srdeploy.quant.plan import QuantPlan, Tier
from srdeploy.quant.plan_io import load_plan
from srdeploy.quant.spec import QuantSpec

_NOT_A_BUILD = "srdeploy inspect needs a build folder (srdeploy build --recipe R.yaml writes one) or its plan.json"
_FILE_KINDS = {".pth": "a checkpoint", ".pt": "a checkpoint", ".ckpt": "a checkpoint", ".safetensors": "a checkpoint"}
COMBINED_PROFILES = 2  # profiles whose grids fit beside the layer facts in 100 columns
_FILE_KINDS |= {".onnx": "an ONNX graph", ".yaml": "a recipe", ".yml": "a recipe", ".png": "an image"}


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders digit runs by value: body.2 < body.10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def _plan_path(target: Path) -> Path:
    """plan.json of a build folder (checksums verified like `validate`), or a plan.json as given."""
    if not target.exists():
        raise PlanError(f"not found: {target}", "pass a build folder or a plan.json")
    if target.is_dir():
        BuildFolder(target).verify()
        return target / "plan.json"
    if target.suffix != ".json":
        kind = _FILE_KINDS.get(target.suffix.lower(), "not a plan.json")
        raise PlanError(f"{target} is {kind}, not a build folder", _NOT_A_BUILD)
    if (target.parent / MANIFEST).is_file():
        BuildFolder(target.parent).verify()
    return target


def _read_plan(target: Path) -> QuantPlan:
    return load_plan(_plan_path(Path(target)))


def summary_rows(plan: QuantPlan) -> dict[str, str]:
    m, p = plan.model, plan.provenance
    rows = dict(
        model=f"{m.name} ({m.arch} x{m.scale})",
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
    return rows


def _spec_dict(spec: QuantSpec | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    return dict(bits=spec.bits, signed=spec.signed, lo=spec.lo, hi=spec.hi, zero_point=int(spec.zero_point))


def layer_rows(plan: QuantPlan, tier: Tier, all_layers: bool = True) -> list[dict[str, Any]]:
    """One dict per conv (plan order): its role, weight bits, input grid per profile, mask, why float."""
    rows = []
    for x in plan.layers:
        if not x.quantized and not all_layers:
            continue
        w = plan.weights.get(x.weight)
        site = sites.site(x.weight, sites.INPUT)
        mask = plan.masks.get(x.weight)
        rows.append(
            dict(
                layer=x.module,
                weight=x.weight,
                role=x.role,
                quantized=x.quantized,
                weight_bits=w.bits if w else None,
                inputs={p: _spec_dict(tier.activations.get(p, {}).get(site)) for p in plan.profiles},
                mask=f"{mask.n}:{mask.m}" if mask else None,
                reason=x.reason,
            )
        )
    return rows


def other_sites(plan: QuantPlan, tier: Tier) -> list[str]:
    """Residual skips and conv outputs of a tier, naturally sorted."""
    names = {s for p in tier.activations.values() for s in p if not s.endswith("@" + sites.INPUT)}
    return sorted(names, key=natural_key)


def inspect_data(target: Path, all_layers: bool = True) -> dict[str, Any]:
    """The plan's summary and, per tier, its layers and other sites, as plain JSON-ready data."""
    plan = _read_plan(target)
    tiers = []
    for tier in plan.tiers:
        others = {
            s: {p: _spec_dict(tier.activations.get(p, {}).get(s)) for p in plan.profiles}
            for s in other_sites(plan, tier)
        }
        tiers.append(dict(index=tier.index, name=tier.name, layers=layer_rows(plan, tier, all_layers), sites=others))
    return dict(summary=summary_rows(plan), tiers=tiers)


def inspect_table(target: Path, all_layers: bool = True) -> list[object]:
    """Rich tables; every value from the plan is escaped (layer names may hold brackets). With more than
    ``COMBINED_PROFILES`` profiles the grids get a table of their own so every table fits 100 columns."""
    from rich.table import Table

    plan = _read_plan(target)
    m = plan.model
    head = Table(title=escape(f"plan: {m.name} ({m.arch} x{m.scale})"))
    head.add_column("key", no_wrap=True)
    head.add_column("value", overflow="fold")
    for k, v in summary_rows(plan).items():
        head.add_row(escape(k), escape(v))
    tables: list[object] = [head]
    combined = len(plan.profiles) <= COMBINED_PROFILES
    for tier in plan.tiers:
        rows = layer_rows(plan, tier, all_layers)
        t = Table(title=escape(f"tier {tier.index} ({tier.name}): conv inputs"))
        shown = plan.profiles if combined else ()
        for c in ("layer", "role", "W", *shown, "mask", "why"):
            t.add_column(c, no_wrap=c in ("layer", "role", "W", "mask"), overflow="fold")
        for r in rows:
            acts = [_fmt(r["inputs"][p]) for p in shown]
            w = "float" if r["weight_bits"] is None else str(r["weight_bits"])
            t.add_row(*(escape(c) for c in (r["layer"], r["role"], w, *acts, r["mask"] or "", r["reason"])))
        tables.append(t)
        if not combined:
            grids = {r["layer"]: r["inputs"] for r in rows if r["quantized"]}
            tables.append(_grid_table(f"tier {tier.index}: conv input grids", "layer", grids, plan.profiles))
        others = {
            s: {p: _spec_dict(tier.activations.get(p, {}).get(s)) for p in plan.profiles}
            for s in other_sites(plan, tier)
        }
        if others:
            tables.append(
                _grid_table(f"tier {tier.index}: residual skips and conv outputs", "site", others, plan.profiles)
            )
    return tables


def _grid_table(title: str, key: str, rows: dict[str, dict[str, Any]], profiles: tuple[str, ...]) -> object:
    from rich.table import Table

    t = Table(title=escape(title))
    t.add_column(key, no_wrap=True)
    for p in profiles:
        t.add_column(p, overflow="fold")
    for name, specs in rows.items():
        t.add_row(escape(name), *(escape(_fmt(specs.get(p))) for p in profiles))
    return t


def _fmt(spec: dict[str, Any] | None) -> str:
    """``u8 0…1.23`` (unsigned 8-bit grid over [0, 1.23]); `` zp=128`` only when the zero point is not 0."""
    if spec is None:
        return "–"
    kind = "s" if spec["signed"] else "u"
    zp = f" zp={spec['zero_point']}" if spec["zero_point"] else ""
    return f"{kind}{spec['bits']} {spec['lo']:.3g}…{spec['hi']:.3g}{zp}"
