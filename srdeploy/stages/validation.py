"""Validate step of a build: the three executions on the recipe's evaluation set, thresholds, reports."""

from __future__ import annotations

from typing import Any

from srdeploy.buildfolder import BuildFolder
from srdeploy.data.sets import load_pairs
from srdeploy.profiles import get_profile
from srdeploy.quant.plan import QuantPlan
from srdeploy.stages.context import BuildContext
from srdeploy.stages.outputs import report_header
from srdeploy.validate.run import file_sizes, validate, validate_steps, write_reports

HIDDEN_SECTIONS = ("sparsity_full",)  # written to their own files


def fusion_sections(folder: BuildFolder, plan: QuantPlan) -> dict[str, Any]:
    """How many quantized convs ONNX Runtime fused into integer kernels, per graph it is meant to run."""
    from srdeploy.backends.ort import fusion_report

    out = {}
    for profile in plan.profiles:
        if get_profile(profile).backends[0] != "onnxruntime":
            continue
        for tier, path in folder.profile_models(profile).items():
            f = fusion_report(path)
            out[f"{profile}/{tier}"] = dict(
                quantized_convs=f.quantized_convs,
                fused_integer_convs=f.fused_integer_convs,
                qlinear_adds=f.optimized_ops.get("QLinearAdd", 0),
            )
    return {"ort_fusion": out} if out else {}


def validate_build(ctx: BuildContext, plan: QuantPlan, folder: BuildFolder) -> dict[str, Any]:
    r = ctx.recipe
    extra = {k: v for k, v in ctx.reports.items() if k not in HIDDEN_SECTIONS}
    extra = {"artifacts": file_sizes(folder.root), **extra, **fusion_sections(folder, plan)}
    pairs = load_pairs(r.validate_.dataset, ctx.model.scale, r.validate_.max_images)
    calibration = sum(ctx.seconds.get(k, 0.0) for k in ("calibrate", "equalize", "refine"))
    title = f"validate {len(pairs)} image(s)"
    with ctx.stage("validate", title, total=validate_steps(pairs)) as advance:
        report, _ = validate(
            folder,
            ctx.model,
            plan,
            pairs,
            r.validate_.thresholds,
            report_header(ctx),
            tile=r.validate_.tile,
            overlap=r.validate_.tile_overlap,
            threads=r.validate_.threads,
            extra_sections=extra,
            calibration_seconds=calibration,
            progress=advance,
            reference=r.validate_.reference,
        )
    write_reports(folder.root, report)
    return report
