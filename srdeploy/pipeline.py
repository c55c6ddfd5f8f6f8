"""build(recipe) -> BuildResult: the whole chain, and nothing else (ARCHITECTURE.md, data flow).

recipe -> model (deploy form) -> sparsity masks -> channel equalization -> calibration ->
refinement -> fp32 ONNX -> QDQ ONNX per profile and tier -> TensorRT lint / engine -> validation.
The output folder is built under a temporary name and appears complete or not at all.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import onnx

from srdeploy.buildfolder import BuildFolder, publish_build, write_manifest
from srdeploy.calib.config import QuantConfig
from srdeploy.calib.flow import apply_refinement, calibrate, equalize_for_daq
from srdeploy.calib.layers import layer_infos
from srdeploy.calib.refine import RefineConfig, refine
from srdeploy.data.sets import load_pairs, lr_patches
from srdeploy.engines import build_engines, lint_trt_graph
from srdeploy.export import export_onnx, residual_add_paths
from srdeploy.fsutil import atomic_write_text
from srdeploy.models.deploy_form import load_for_recipe, save_deploy_model, to_deploy_form
from srdeploy.passes.graph_info import analyze
from srdeploy.passes.rewrite import rewrite
from srdeploy.progress import Progress, SilentProgress
from srdeploy.quant.plan import NMMask, QuantPlan, save_plan
from srdeploy.recipe import Recipe
from srdeploy.sparsity.api import choose_masks, prune_structure
from srdeploy.sparsity.config import SparsityConfig
from srdeploy.validate.run import file_sizes, validate, write_reports
from srdeploy.validate.verdict import Thresholds


@dataclass(frozen=True)
class BuildResult:
    out_dir: Path
    plan: QuantPlan
    report: dict[str, Any]
    seconds: dict[str, float]

    @property
    def passed(self) -> bool:
        return self.report.get("verdict") == "pass"


def quant_config(recipe: Recipe) -> QuantConfig:
    q = recipe.quant
    return QuantConfig(
        weight_bits=q.weight_bits,
        act_bits=q.act_bits,
        method=q.method,
        weight_method=q.weight_method,
        percentile=q.percentile,
        quantize_roles=tuple(q.quantize_roles),
        residual_skips=q.residual_skips,
        skip_bits=q.skip_bits,
        adaptive=q.adaptive.enabled,
        layer_bits=q.adaptive.layer_bits,
        image_bits=q.adaptive.image_bits,
        layer_percentiles=tuple(q.adaptive.layer_percentiles),
        image_percentiles=tuple(q.adaptive.image_percentiles),
        equalize=q.equalize if q.equalize is not None else q.method == "daq",
        equalize_strength=q.equalize_strength,
    )


def thresholds(recipe: Recipe) -> Thresholds:
    t = recipe.validate_.thresholds
    return Thresholds(
        max_psnr_drop_db=t.max_psnr_drop_db,
        max_image_psnr_drop_db=t.max_image_psnr_drop_db,
        min_psnr_db=t.min_psnr_db,
        min_agreement_db=t.min_agreement_db,
    )


def calib_source(recipe: Recipe) -> str:
    return recipe.calib.folder or recipe.calib.set or "train"


def build(
    recipe: Recipe, out_dir: str | Path | None = None, progress: Progress | None = None, run_validation: bool = True
) -> BuildResult:
    progress = progress or SilentProgress()
    out = Path(out_dir) if out_dir else Path("builds") / recipe.name
    seconds: dict[str, float] = {}
    cfg = quant_config(recipe)
    with publish_build(out, log=progress.log) as staging:  # policy: buildfolder.py docstring
        tmp = staging.root
        folder = BuildFolder(tmp)
        t0 = time.perf_counter()
        scfg = SparsityConfig.from_section(recipe.sparsity)
        extra_sections: dict[str, Any] = {}
        with progress.stage("load model"):
            model, structure = prune_structure(load_for_recipe(recipe.model), scfg)  # bn_filter: before BN folding
            model = to_deploy_form(model)
        with progress.stage("calibration patches"):
            patches = lr_patches(
                calib_source(recipe), model.scale, recipe.calib.patch_size, recipe.calib.patches, recipe.seed
            )
        with progress.stage("export fp32 ONNX"):
            export_onnx(model, folder.fp32_onnx, opset=recipe.export.opset)
            fp32 = onnx.load(str(folder.fp32_onnx))
            graph = analyze(fp32, residual_add_paths(model.module))
        seconds["prepare"] = time.perf_counter() - t0
        masks, sparsity_report = {}, {}
        if scfg.policy not in ("none", "bn_filter"):
            ts = time.perf_counter()
            with progress.stage(f"sparsity ({scfg.policy})"):
                layers = layer_infos(model, list(graph.convs), cfg.quantize_roles)
                masks, sparsity_report = choose_masks(model, layers, patches, scfg, recipe.seed)
                masks = attach_corrected_biases(masks, sparsity_report.get("bias_updates", {}))
            seconds["sparsity"] = time.perf_counter() - ts
        if scfg.policy != "none":
            extra_sections["sparsity"] = sparsity_summary(structure, sparsity_report)
        t1 = time.perf_counter()
        if cfg.equalize:
            with progress.stage("DAQ channel equalization"):
                extra_sections["equalization"] = equalize_for_daq(
                    model, fp32, graph, patches, cfg, recipe.calib.batch_size, recipe.seed, masks
                )
                onnx.save(fp32, str(folder.fp32_onnx))
        with progress.stage("calibrate", total=len(patches)) as advance:
            run = calibrate(
                model,
                graph,
                patches,
                cfg,
                masks,
                recipe.calib.batch_size,
                recipe.seed,
                meta={"recipe": recipe.name, "recipe_digest": recipe.digest},
                progress=advance,
            )
        plan = run.plan
        seconds["calibrate"] = time.perf_counter() - t1
        if recipe.quant.refine.steps > 0:
            t1r = time.perf_counter()
            plan, extra_sections["refinement"] = refine_plan(recipe, model, run, progress)
            seconds["refine"] = time.perf_counter() - t1r
        t2 = time.perf_counter()
        tier_ids = [t.index for t in plan.tiers]
        lint: dict[str, Any] = {}
        with progress.stage("rewrite", total=len(recipe.export.profiles) * len(tier_ids)) as advance:
            done = 0
            for profile in recipe.export.profiles:
                for tier in tier_ids:
                    int4 = profile == "ort" and recipe.quant.int4_weights and cfg.weight_bits <= 4
                    qmodel, _ = rewrite(
                        fp32,
                        plan,
                        profile,
                        tier,
                        opset=recipe.export.opset,
                        int4_weights=int4,
                        metadata={"srdeploy.recipe_digest": recipe.digest},
                    )
                    path = folder.profile_model(profile, None if len(tier_ids) == 1 else tier)
                    if profile == "trt":
                        lint[path.name] = lint_trt_graph(qmodel, f"trt/{path.name}")
                    path.parent.mkdir(parents=True, exist_ok=True)
                    onnx.save(qmodel, str(path))
                    done += 1
                    advance(done)
        seconds["rewrite"] = time.perf_counter() - t2
        if lint:
            extra_sections["trt_lint"] = {
                k: dict(
                    errors=v["errors"],
                    warnings=[
                        f"{f['rule']} at {f['node']}: {f['message']}"
                        for f in v["findings"]
                        if f["severity"] == "warning"
                    ],
                )
                for k, v in lint.items()
            }
        with progress.stage("TensorRT engines"):
            extra_sections["tensorrt"] = build_engines(recipe, folder, plan, model)
        save_plan(plan, folder.plan)
        save_deploy_model(model, tmp, structure={"pruned_channels": structure.get("pruned_channels", {})})
        if scfg.policy != "none":
            atomic_write_text(
                folder.root / "sparsity.json",
                json.dumps({"structure": structure.get("report", {}), "masks": sparsity_report}, indent=1, default=str)
                + "\n",
            )
        atomic_write_text(folder.recipe, recipe.to_yaml())
        write_tiers_json(folder, plan)
        header = dict(
            recipe=dict(name=recipe.name, digest=recipe.digest),
            model=dict(name=model.name, arch=model.arch, scale=model.scale),
            dataset=recipe.validate_.dataset,
        )
        if "ort" in recipe.export.profiles:
            from srdeploy.backends.ort import fusion_report

            fusion = {str(t): fusion_report(p) for t, p in folder.profile_models("ort").items()}
            extra_sections["ort_fusion"] = {
                t: dict(
                    quantized_convs=f.quantized_convs,
                    fused_integer_convs=f.fused_integer_convs,
                    qlinear_adds=f.optimized_ops.get("QLinearAdd", 0),
                )
                for t, f in fusion.items()
            }
        extra = {"artifacts": file_sizes(tmp), **extra_sections}
        report: dict[str, Any] = dict(header, verdict="not validated", failures=[])
        if run_validation:
            pairs = load_pairs(recipe.validate_.dataset, model.scale, recipe.validate_.max_images)
            t3 = time.perf_counter()
            with progress.stage("validate", total=len(pairs)) as advance:
                report, _ = validate(
                    folder,
                    model,
                    plan,
                    pairs,
                    thresholds(recipe),
                    recipe.export.profiles,
                    header,
                    tile=recipe.validate_.tile,
                    overlap=recipe.validate_.tile_overlap,
                    threads=recipe.validate_.threads,
                    extra_sections=extra,
                    calibration_seconds=seconds["calibrate"] + seconds.get("refine", 0.0),
                    progress=advance,
                )
            seconds["validate"] = time.perf_counter() - t3
            write_reports(tmp, report)
        write_manifest(
            tmp,
            dict(recipe=recipe.name, recipe_digest=recipe.digest, seconds={k: round(v, 2) for k, v in seconds.items()}),
        )
        staging.verdict = report.get("verdict")
    assert staging.published is not None
    return BuildResult(out_dir=staging.published, plan=plan, report=report, seconds=seconds)


def write_tiers_json(folder: BuildFolder, plan: QuantPlan) -> None:
    """The selector apps apply: statistic, thresholds, which file serves which tier."""
    from srdeploy.validate import cost

    tiers = []
    for t in plan.tiers:
        files = {
            p: str(folder.profile_model(p, None if len(plan.tiers) == 1 else t.index).relative_to(folder.root))
            for p in ("trt", "ort")
        }
        tiers.append(dict(index=t.index, name=t.name, fab=cost.fab(plan, {t.index: 1.0}), files=files))
    sel = plan.selector
    doc = dict(
        scale=int(plan.model["scale"]),
        default_tier=plan.default_tier,
        selector=None
        if sel is None
        else dict(statistic=sel.statistic, thresholds=list(sel.thresholds), tiers=list(sel.tiers)),
        tiers=tiers,
    )
    atomic_write_text(folder.tiers_json, json.dumps(doc, indent=1) + "\n")


def refine_plan(recipe: Recipe, model: Any, run: Any, progress: Progress) -> tuple[QuantPlan, dict[str, Any]]:
    """AdaBM-style label-free refinement of the calibrated plan against the fp32 outputs."""
    rc = recipe.quant.refine
    patches = lr_patches(calib_source(recipe), model.scale, rc.patch_size, rc.patches, recipe.seed + 1)
    cfg = RefineConfig(
        steps=rc.steps,
        batch_size=rc.batch_size,
        lr_bounds=rc.lr_bounds,
        lr_thresholds=rc.lr_thresholds,
        lr_layer_bits=rc.lr_layer_bits,
        feature_weight=rc.feature_weight,
        bit_weight=rc.bit_weight,
        learn_bits=rc.learn_bits,
        seed=recipe.seed,
    )
    with progress.stage("refine (label-free, vs fp32)", total=rc.steps) as advance:
        result = refine(model, run.plan, patches, cfg, progress=advance)
    section = dict(
        steps=rc.steps,
        seconds=round(result.seconds, 1),
        eval_l1_before=round(result.eval_loss_before, 5),
        eval_l1_after=round(result.eval_loss_after, 5),
    )
    return apply_refinement(model, run, result), section


def attach_corrected_biases(masks: dict[str, NMMask], bias_updates: dict[str, Any]) -> dict[str, NMMask]:
    """Bias corrections live in the plan (beside the masks), so the fp32 reference stays the
    trained model while simulation and the rewrite use the corrected biases."""
    import numpy as np

    out = {}
    for weight, mask in masks.items():
        bias = bias_updates.get(weight[: -len("weight")] + "bias")
        out[weight] = replace(mask, bias=np.asarray(bias, dtype=np.float32)) if bias is not None else mask
    return out


def sparsity_summary(structure: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """The part of the sparsity report shown in report.json/md (the full one is sparsity.json)."""
    out: dict[str, Any] = {"policy": report.get("policy") or structure.get("report", {}).get("policy")}
    if report:
        out["macs"] = report.get("macs")
        out["eligibility"] = report.get("eligibility", {}).get("summary")
        out["bias_correction"] = {k: v for k, v in report.get("bias_correction", {}).items() if k != "layers"}
        out["layers"] = [
            {k: r.get(k) for k in ("weight", "pattern", "density", "reason") if k in r}
            for r in report.get("layers", [])
            if r.get("pattern")
        ]
    if structure.get("pruned_channels"):
        out["pruned_channels"] = {k: len(v) for k, v in structure["pruned_channels"].items()}
        out["structure"] = {k: v for k, v in structure.get("report", {}).items() if k != "layers"}
    return out
