"""build(recipe) -> BuildResult: the chain of docs/ARCHITECTURE.md, and nothing else.

    prepare (model as trained, patches, fp32.onnx, graph analysis, layer facts)
    -> plan steps: sparsity -> equalize -> calibrate -> precision -> refine          (each QuantPlan -> QuantPlan)
    -> emit every profile x tier -> TensorRT engines -> files -> validate
The output folder is built under a temporary name and appears complete or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srdeploy.buildfolder import BuildFolder, publish_build, write_manifest
from srdeploy.calib.cache import CalibrationCache
from srdeploy.engines import build_engines
from srdeploy.errors import RecipeError
from srdeploy.progress import Progress, SilentProgress
from srdeploy.quant.plan import QuantPlan
from srdeploy.recipe import Recipe
from srdeploy.stages.calibrate import calibrate_step
from srdeploy.stages.context import BuildContext, initial_plan, prepare
from srdeploy.stages.emit import emit_all, emit_inputs
from srdeploy.stages.equalize import equalize_step
from srdeploy.stages.float_tier import float_tier_step
from srdeploy.stages.outputs import report_header, write_build_files
from srdeploy.stages.precision import precision_step
from srdeploy.stages.refine import refine_step
from srdeploy.stages.sparsity import sparsity_step
from srdeploy.stages.validation import validate_build

PLAN_STEPS = (sparsity_step, equalize_step, calibrate_step, precision_step, refine_step, float_tier_step)


@dataclass(frozen=True)
class BuildResult:
    out_dir: Path
    plan: QuantPlan
    report: dict[str, Any]
    seconds: dict[str, float]

    @property
    def passed(self) -> bool:
        return self.report.get("verdict") == "pass"


def build(
    recipe: Recipe,
    out_dir: str | Path | None = None,
    progress: Progress | None = None,
    run_validation: bool = True,
    calibration_cache: CalibrationCache | None = None,
) -> BuildResult:
    """``calibration_cache`` (calib/cache.read_cache): use its ranges instead of estimating them."""
    progress = progress or SilentProgress()
    if calibration_cache is not None and recipe.quant.float_budget > 0:
        raise RecipeError(
            f"calibration cache {calibration_cache.path} with quant.float_budget > 0: the budget re-calibrates",
            "set quant.float_budget=0 and list the layers it kept float in quant.exclude (srdeploy inspect shows them)",
        )
    out = Path(out_dir) if out_dir else Path("builds") / recipe.name
    with publish_build(out, log=progress.log) as staging:  # policy: buildfolder.py docstring
        folder = BuildFolder(staging.root)
        ctx = prepare(recipe, folder.fp32_onnx, progress)
        ctx.calibration_cache = calibration_cache
        plan = initial_plan(ctx)
        for step in PLAN_STEPS:
            plan = step(ctx, plan)
        emit_and_package(ctx, plan, folder)
        report = validate_build(ctx, plan, folder) if run_validation else not_validated(ctx)
        seconds = {k: round(v, 2) for k, v in ctx.seconds.items()}
        write_manifest(folder.root, dict(recipe=recipe.name, recipe_digest=recipe.digest, seconds=seconds))
        staging.verdict = report.get("verdict")
    assert staging.published is not None
    return BuildResult(out_dir=staging.published, plan=plan, report=report, seconds=ctx.seconds)


def emit_and_package(ctx: BuildContext, plan: QuantPlan, folder: BuildFolder) -> None:
    total = len(plan.profiles) * len(plan.tiers)
    with ctx.stage("emit", "emit graphs", total=total) as advance:
        inputs = emit_inputs(ctx.model, plan, ctx.fp32, ctx.recipe.export.opset)
        ctx.reports.update(emit_all(inputs, plan, folder, advance))
    with ctx.stage("engines", "TensorRT engines") as stage:
        ctx.reports["tensorrt"] = build_engines(ctx.recipe, folder, plan, ctx.model)
        if "skipped" in ctx.reports["tensorrt"]:
            stage.skip(ctx.reports["tensorrt"]["skipped"])
    write_build_files(ctx, plan, folder)


def not_validated(ctx: BuildContext) -> dict[str, Any]:
    ctx.progress.skip("validate", "--no-validate")
    return dict(report_header(ctx), verdict="not validated", failures=[])
