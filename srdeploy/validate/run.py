"""Validate a build folder: assemble the executions, compare, apply thresholds, write reports."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from srdeploy import __version__
from srdeploy.backends.base import Runner, TorchRunner
from srdeploy.backends.registry import capabilities, get_backend, make_runner
from srdeploy.buildfolder import BuildFolder
from srdeploy.data.categories import UNCATEGORISED
from srdeploy.data.sets import SRPair
from srdeploy.errors import SrdeployError
from srdeploy.machine import machine_info
from srdeploy.models.base import SRModel
from srdeploy.profiles import get_profile
from srdeploy.quant.plan import QuantPlan
from srdeploy.quant.simulate import simulate
from srdeploy.recipe import Thresholds
from srdeploy.validate import cost
from srdeploy.validate.breakdown import content_breakdown
from srdeploy.validate.compare import Comparison, Execution, compare
from srdeploy.validate.report import applicable_notes, build_report, render_junit
from srdeploy.validate.report_html import render_html
from srdeploy.validate.report_md import render_markdown
from srdeploy.validate.verdict import check, sanity_check

VISUAL_IMAGES = 3  # crop strips drawn (the worst images)


def backend_runners(backend: str, folder: BuildFolder, profile: str, threads: int) -> dict[int, Runner]:
    """tier -> runner of ``backend`` for ``profile``'s artifacts in the folder; {} where it cannot run here."""
    spec = get_backend(backend)
    paths = folder.profile_engines(profile) if spec.artifact == "engine" else folder.profile_models(profile)
    if not paths or not capabilities(backend).available:
        return {}
    opts = {} if spec.artifact == "engine" else {"threads": threads}
    return {t: make_runner(backend, p, name=f"{backend}:{profile}", **opts) for t, p in paths.items()}


def executions_for(
    folder: BuildFolder, model: SRModel, plan: QuantPlan, threads: int = 2, extra: Sequence[Execution] = ()
) -> list[Execution]:
    """fp32, then per exported profile its simulation and every backend that runs it here."""
    tiers = [t.index for t in plan.tiers]
    out = [Execution("fp32", "reference", {t: TorchRunner(model.module, "fp32") for t in tiers}, note="PyTorch fp32")]
    for name in plan.profiles:
        if not folder.profile_models(name):
            continue
        profile, sim = get_profile(name), f"sim:{name}"
        runners = {t: TorchRunner(simulate(model, plan, name, t), sim) for t in tiers}
        out.append(Execution(sim, "simulation", runners, profile=name, note="PyTorch fake quantization of the plan"))
        for backend in profile.backends:
            deployed = backend_runners(backend, folder, name, threads)
            if deployed:
                note = get_backend(backend).summary if backend == profile.backends[0] else profile.validation_note
                out.append(
                    Execution(f"{backend}:{name}", "deployment", deployed, profile=name, simulation=sim, note=note)
                )
    return out + list(extra)


def quantization_summary(
    plan: QuantPlan, model: SRModel, usage: Mapping[int, int], seconds: float | None
) -> dict[str, Any]:
    params = {n: p.numel() for n, p in model.module.named_parameters()}
    dense_bits = sum(params[x.weight] * 32 for x in plan.layers) / 8.0
    total_usage = sum(usage.values()) or 1
    shares = {t: n / total_usage for t, n in usage.items()} if usage else None
    fab = cost.fab(plan, shares)
    return dict(
        method=plan.provenance.method,
        weight_bits=plan.bits.weight_bits,
        act_bits=plan.bits.base,
        tiers=[dict(index=t.index, name=t.name, fab=cost.fab(plan, {t.index: 1.0})) for t in plan.tiers],
        fab=None if fab is None else round(fab, 3),
        bitops_g=round(cost.bitops(plan, shares) / 1e9, 2),
        fp32_bitops_g=round(cost.macs(plan, sparse=False)["total"] / 1e9, 2),
        model_size_kb=round(cost.model_size_bytes(plan, params) / 1024, 1),
        fp32_size_kb=round(dense_bits / 1024, 1),
        quantized_layers=len(plan.quantized_layers()),
        layers=len(plan.layers),
        calibration_seconds=None if seconds is None else round(seconds, 2),
    )


def write_reports(root: Path, report: Mapping[str, Any], stem: str = "report") -> dict[str, Path]:
    from srdeploy.fsutil import atomic_write_text

    paths = {
        "json": root / f"{stem}.json",
        "md": root / f"{stem}.md",
        "html": root / f"{stem}.html",
        "junit": root / f"{stem}.junit.xml",
    }
    atomic_write_text(paths["json"], json.dumps(report, indent=1, sort_keys=False) + "\n")
    atomic_write_text(paths["md"], render_markdown(report))
    atomic_write_text(paths["html"], render_html(report, root))
    atomic_write_text(paths["junit"], render_junit(report))
    return paths


def validate_steps(pairs: Sequence[SRPair], visuals: bool = True) -> int:
    """Progress steps of ``validate``: one per image compared, one per crop strip drawn."""
    return len(pairs) + (min(VISUAL_IMAGES, len(pairs)) if visuals else 0)


def validate(
    folder: BuildFolder,
    model: SRModel,
    plan: QuantPlan,
    pairs: Sequence[SRPair],
    thresholds: Thresholds,
    header: Mapping[str, Any],
    tile: int | None = None,
    threads: int = 2,
    overlap: int = 16,
    extra_sections: Mapping[str, Any] | None = None,
    calibration_seconds: float | None = None,
    progress: Callable[[int], None] | None = None,
    visuals: str | None = "report_images",
    reference: str = "hr",
) -> tuple[dict[str, Any], Comparison]:
    """Compare, check thresholds, and (``visuals``: a folder name under the build) draw crops. Image categories
    come from the dataset named in ``header`` (its categories.json), else every image is uncategorised."""
    executions = executions_for(folder, model, plan, threads)
    t0 = time.perf_counter()
    comparison = compare(
        pairs, executions, model.scale, plan.selector, plan.default_tier, tile, progress, overlap, model.size_rules
    )
    deployments = [e.name for e in executions if e.kind == "deployment"]
    sane, warnings = sanity_check(comparison, thresholds, reference)
    failures = sane + check(comparison, deployments, thresholds)
    usage = comparison.tier_usage(deployments[0]) if deployments else {}
    categories = _categories(header.get("dataset"))
    measured = [e.name for e in executions if e.kind != "reference"]
    report = build_report(
        header={
            **header,
            "reference": reference,
            "srdeploy_version": __version__,
            "images_evaluated": len(pairs),
            "validation_seconds": round(time.perf_counter() - t0, 1),
            "machine": machine_info(),
        },
        comparison=comparison,
        executions=executions,
        thresholds=thresholds,
        failures=failures,
        warnings=warnings,
        extra={
            "quantization": quantization_summary(plan, model, usage, calibration_seconds),
            "categories": {p.name: categories.get(p.name, UNCATEGORISED) for p in pairs},
            "content": content_breakdown(comparison.drops(), measured, categories),
            **dict(extra_sections or {}),
        },
        notes=applicable_notes(plan),
    )
    if visuals:
        where = folder.root / visuals
        images = _draw_visuals(where, plan, model, comparison, executions, pairs, tile, overlap, progress)
        report["visuals"] = {k: f"{visuals}/{v}" for k, v in images.items()}
    return report, comparison


def _draw_visuals(
    out: Path,
    plan: QuantPlan,
    model: SRModel,
    comparison: Comparison,
    executions: Sequence[Execution],
    pairs: Sequence[SRPair],
    tile: int | None,
    overlap: int,
    progress: Callable[[int], None] | None,
) -> dict[str, str]:
    from srdeploy.validate.compare import make_router, run_execution
    from srdeploy.validate.visual import write_visuals

    router = make_router(plan.selector, plan.default_tier)

    def run(ex: Execution, lr: np.ndarray) -> np.ndarray:
        return run_execution(ex, lr, model.scale, router, tile, overlap, model.size_rules)[0]

    def crops_done(k: int) -> None:
        if progress:
            progress(len(pairs) + k)

    return write_visuals(out, plan, comparison, executions, pairs, model.scale, run, crops_done)


def _categories(dataset: object) -> dict[str, str]:
    from srdeploy.data.sets import image_categories

    try:
        return image_categories(str(dataset)) if dataset else {}
    except (OSError, ValueError, SrdeployError):
        return {}


def file_sizes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*.onnx"))}


def mean_or_none(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None
