"""TensorRT stage of a build: lint every trt graph, then build engines where TensorRT and a GPU
exist (otherwise record that the engine was skipped, or fail when the recipe requires it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from srdeploy.buildfolder import BuildFolder
from srdeploy.errors import BackendUnavailable, RewriteError
from srdeploy.models.base import SRModel
from srdeploy.quant.plan import QuantPlan
from srdeploy.recipe import Recipe


def lint_trt_graph(model: onnx.ModelProto, name: str) -> dict[str, Any]:
    """Static TensorRT rules; an error means our rewrite is wrong, so the build stops."""
    from srdeploy.passes.lint_trt import lint_trt

    report = lint_trt(model)
    if not report.ok:
        raise RewriteError(
            f"{name}: {report.summary()}",
            "this is a bug in the trt rewrite; `srdeploy lint-trt <file>` lists each finding",
        )
    return report.as_dict()


LINTERS = {"tensorrt": lint_trt_graph}


def engine_profile(plan: QuantPlan) -> str | None:
    """The exported profile whose graphs TensorRT builds engines from (its intended backend is tensorrt)."""
    from srdeploy.profiles import get_profile

    return next((p for p in plan.profiles if get_profile(p).backends[:1] == ("tensorrt",)), None)


def build_engines(recipe: Recipe, folder: BuildFolder, plan: QuantPlan, model: SRModel) -> dict[str, Any]:
    """Engines for each tier of the TensorRT profile, or the reason they were skipped."""
    profile = engine_profile(plan)
    if profile is None or not recipe.tensorrt.enabled:
        return {"skipped": "tensorrt.enabled is false or no TensorRT profile (trt) is exported"}
    from srdeploy.backends import tensorrt as trt_backend

    caps = trt_backend.capabilities()
    if not caps.available:
        if recipe.tensorrt.required:
            raise BackendUnavailable(
                f"TensorRT engine required by the recipe, but {caps.reason}",
                "install srdeploy[tensorrt-cu12] or [tensorrt-cu13] (README: TensorRT) on an NVIDIA GPU machine, "
                "or set tensorrt.required: false",
            )
        return {"skipped": f"emitted the trt ONNX; no engine built: {caps.reason}"}
    from srdeploy.backends.trt_config import EngineConfig
    from srdeploy.backends.trt_report import compare_engine_to_plan, summarize
    from srdeploy.sparsity.nm import sparse_2of4_weights

    sparse = bool(sparse_2of4_weights(plan.masks))
    rules = model.size_rules
    cfg = EngineConfig.from_recipe(
        recipe.tensorrt, plan_has_2of4=sparse, size_multiple=rules.multiple, fixed_batch=rules.batch
    )
    engines: dict[str, Any] = {}
    models = folder.profile_models(profile)
    single = len(models) == 1
    for tier, onnx_path in models.items():
        art = trt_backend.build_engine(onnx_path, cfg, onnx_path.parent, tier_name=None if single else str(tier))
        rows = compare_engine_to_plan(trt_backend.inspect_engine(art.engine_path), plan, art.sparsity)
        engines[str(tier)] = dict(
            engine=str(Path(art.engine_path).relative_to(folder.root)),
            metadata=art.metadata,
            summary=summarize(rows),
            layers=rows,
        )
    return {"engines": engines}
