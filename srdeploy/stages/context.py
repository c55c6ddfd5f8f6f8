"""What every build step reads: the recipe, the model (as loaded and in deploy form, both as trained), the
fp32 graph and its analysis, per-layer facts (computed once), the calibration patches. Steps never modify it;
they return a new plan and add their report sections to ``reports``."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from srdeploy.calib.exclude import apply_exclusions
from srdeploy.calib.layers import layer_infos
from srdeploy.data.calib_inputs import calib_patches, source_count
from srdeploy.data.coverage import calibration_warnings
from srdeploy.export import export_onnx, residual_add_paths
from srdeploy.models.base import SRModel
from srdeploy.models.deploy_form import load_for_recipe, to_deploy_form
from srdeploy.passes.graph_info import GraphInfo, analyze
from srdeploy.profiles import get_profile
from srdeploy.progress import Progress, SilentProgress, Stage
from srdeploy.quant.plan import LayerInfo, ModelRef, Provenance, QuantPlan
from srdeploy.recipe import Recipe


@dataclass
class BuildContext:
    recipe: Recipe
    loaded: SRModel  # as loaded: BatchNorm not folded (structural pruning reads its statistics)
    model: SRModel  # deploy form of the same weights (BN, res_scale, rgb_range folded: function unchanged)
    fp32: onnx.ModelProto
    graph: GraphInfo
    layers: tuple[LayerInfo, ...]
    patches: np.ndarray
    progress: Progress = field(default_factory=SilentProgress)
    reports: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    calibration_cache: Any = None  # calib/cache.CalibrationCache: imported ranges, no range estimation

    @contextmanager
    def stage(self, key: str, title: str, total: int | None = None) -> Iterator[Stage]:
        t0 = time.perf_counter()
        with self.progress.stage(title, total) as advance:
            yield advance
        self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t0


def calib_source(recipe: Recipe) -> str:
    """The tensors file, folder or named set the calibration patches come from."""
    return recipe.calib.source


def prepare(recipe: Recipe, fp32_path: Path, progress: Progress | None = None) -> BuildContext:
    """Load the model, cut the calibration patches, export fp32.onnx to ``fp32_path`` and analyse it."""
    progress = progress or SilentProgress()
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    with progress.stage("load model"):
        loaded = load_for_recipe(recipe.model)
        model = to_deploy_form(copy.deepcopy(loaded))
    with progress.stage("calibration patches"):
        c = recipe.calib
        patches = calib_patches(c, model.scale, c.patch_size, c.patches, recipe.seed)
        warnings = coverage_warnings(recipe, patches, model.scale)
    for line in warnings:
        progress.log(f"warning: {line}")
    with progress.stage("export fp32 ONNX"):
        export_onnx(model, fp32_path, opset=recipe.export.opset)
        fp32 = onnx.load(str(fp32_path))
        graph = analyze(fp32, residual_add_paths(model.module))
        layers = layer_infos(model, list(graph.convs), recipe.quant.quantize_roles)
        layers = apply_exclusions(layers, recipe.quant.exclude, graph)
    seconds["prepare"] = time.perf_counter() - t0
    ctx = BuildContext(recipe, loaded, model, fp32, graph, layers, patches, progress, seconds=seconds)
    if warnings:
        ctx.reports["calibration_warnings"] = warnings
    return ctx


def coverage_warnings(recipe: Recipe, patches: np.ndarray, scale: int) -> list[str]:
    """What the calibration set lacks (data/coverage.py): shown while building and kept in the report."""
    return calibration_warnings(patches, source_count(recipe.calib, scale, recipe.calib.patch_size))


def initial_plan(ctx: BuildContext) -> QuantPlan:
    """The plan before any step: the model, its layers, and how each exported profile will be emitted."""
    r, m = ctx.recipe, ctx.model
    emission = {
        p: get_profile(p).emission(r.export.opset, r.quant.weight_bits, r.quant.int4_weights) for p in r.export.profiles
    }
    return QuantPlan(
        model=ModelRef(arch=m.arch, name=m.name, scale=m.scale, hparams=dict(m.hparams)),
        layers=ctx.layers,
        emission=emission,
        provenance=Provenance(
            recipe=r.name,
            recipe_digest=r.digest,
            method=r.quant.method,
            weight_method=r.quant.resolved_weight_method,
            calibration_patches=len(ctx.patches),
        ),
    )
