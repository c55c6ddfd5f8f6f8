"""calibrate(): observers -> bit allocation -> ranges -> specs -> QuantPlan, for one model."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from srdeploy.calib import bits as bit_alloc
from srdeploy.calib.calibrate import (
    SitePlan,
    estimate_ranges,
    make_plan,
    make_tiers,
    plan_sites,
    weight_specs,
)
from srdeploy.calib.complexity import complexity
from srdeploy.calib.config import QuantConfig
from srdeploy.calib.layers import layer_infos
from srdeploy.calib.observers import SiteStats, observe
from srdeploy.calib.refine import RefineResult
from srdeploy.models.base import SRModel
from srdeploy.passes.graph_info import GraphInfo
from srdeploy.quant import sites
from srdeploy.quant.plan import NMMask, QuantPlan


@dataclass
class CalibrationRun:
    """What calibration produced beside the plan (kept for refinement and reports)."""

    plan: QuantPlan
    stats: Mapping[str, SiteStats]
    alloc: bit_alloc.BitAllocation
    ranges: dict[tuple[str, str], tuple[float, float]]
    site_plan: SitePlan
    cfg: QuantConfig
    masks: dict[str, NMMask]
    seconds: dict[str, float] = field(default_factory=dict)


def allocate_bits(
    cfg: QuantConfig, stats: Mapping[str, SiteStats], body: list[str], patches: np.ndarray
) -> bit_alloc.BitAllocation:
    if not cfg.adaptive:
        return bit_alloc.fixed(cfg.act_bits)
    layer_std = {w: float(np.mean(stats[sites.site(w, sites.INPUT)].img_std)) for w in body}
    return bit_alloc.adabm(
        cfg.act_bits,
        layer_std,
        complexity(patches),
        layer_percentiles=cfg.layer_percentiles,
        image_percentiles=cfg.image_percentiles,
        use_layer=cfg.layer_bits,
        use_image=cfg.image_bits,
    )


def calibrate(
    model: SRModel,
    graph: GraphInfo,
    patches: np.ndarray,
    cfg: QuantConfig,
    masks: Mapping[str, NMMask] | None = None,
    batch_size: int = 8,
    seed: int = 0,
    meta: Mapping[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> CalibrationRun:
    masks = dict(masks or {})
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    layers = layer_infos(model, list(graph.convs), cfg.quantize_roles)
    site_plan = plan_sites(layers, graph, cfg)
    by_weight = {x.weight: x for x in layers}
    # Observe the model as deployed: pruned weights in place (masks), float everything else.
    module = model.module
    if masks:
        import copy

        module = copy.deepcopy(module)
        from srdeploy.quant.simulate import apply_weights

        apply_weights(module, make_plan(model, layers, {}, (), bit_alloc.fixed(8), masks, {}), quantize=False)
    stats = observe(module, set(site_plan.trt) | set(site_plan.ort), patches, batch_size, seed=seed, progress=progress)
    seconds["observe"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    body = [x.weight for x in layers if x.quantized and x.role == "body"]
    alloc = allocate_bits(cfg, stats, body, patches)
    ranges = estimate_ranges(stats, site_plan, by_weight, alloc, cfg)
    tiers = make_tiers(ranges, stats, site_plan, by_weight, alloc, cfg)
    weights = weight_specs(model, layers, cfg, masks)
    seconds["ranges"] = time.perf_counter() - t1
    plan_meta = {
        "method": cfg.method,
        "weight_bits": cfg.weight_bits,
        "act_bits": cfg.act_bits,
        "weight_method": cfg.resolved_weight_method,
        "quantize_roles": list(cfg.quantize_roles),
        "calibration_patches": len(patches),
        **dict(meta or {}),
    }
    plan = make_plan(model, layers, weights, tiers, alloc, masks, plan_meta)
    return CalibrationRun(
        plan=plan, stats=stats, alloc=alloc, ranges=ranges, site_plan=site_plan, cfg=cfg, masks=masks, seconds=seconds
    )


def apply_refinement(model: SRModel, run: CalibrationRun, result: RefineResult) -> QuantPlan:
    """The calibrated plan with the refined ranges, weight clips, layer bits and thresholds."""
    layers = run.plan.layers
    by_weight = {x.weight: x for x in layers}
    ranges = dict(run.ranges)
    for site_name, (lo, hi) in result.ranges.items():
        ranges[("trt", site_name)] = (lo, hi)
        cal_lo = ranges.get(("ort", site_name), (lo, hi))[0]
        signed = run.plan.tier(run.plan.default_tier).sites("trt")[site_name].signed
        ranges[("ort", site_name)] = (lo if signed else cal_lo, hi)
    alloc = bit_alloc.BitAllocation(
        layer_offsets=dict(result.layer_offsets) or dict(run.alloc.layer_offsets),
        tier_offsets=run.alloc.tier_offsets,
        base=run.alloc.base,
        thresholds=result.thresholds or run.alloc.thresholds,
    )
    tiers = make_tiers(ranges, run.stats, run.site_plan, by_weight, alloc, run.cfg)
    weights = weight_specs(model, layers, run.cfg, run.masks, clips=result.weight_absmax)
    meta = {
        **run.plan.meta,
        "refined": True,
        "refine_steps": len(result.losses),
        "refine_seconds": round(result.seconds, 2),
        "refine_loss_first_last": [round(result.losses[0], 5), round(result.losses[-1], 5)] if result.losses else None,
    }
    return make_plan(model, layers, weights, tiers, alloc, run.masks, meta)


def equalize_for_daq(
    model: SRModel,
    fp32: object,
    graph: GraphInfo,
    patches: np.ndarray,
    cfg: QuantConfig,
    batch_size: int = 8,
    seed: int = 0,
    masks: dict | None = None,
) -> dict[str, Any]:
    """DAQ's static form: observe conv inputs, rescale channels in place (model and fp32 ONNX)."""
    from srdeploy.calib.equalize import equalize, refresh_initializers

    layers = layer_infos(model, list(graph.convs), cfg.quantize_roles)
    quantized = {x.weight for x in layers if x.quantized}
    names = [sites.site(w, sites.INPUT) for w in quantized]
    stats = observe(model.module, names, patches, batch_size, seed=seed)
    bits = {x.weight: (cfg.act_bits if x.role == "body" else 8) for x in layers if x.quantized}
    report = equalize(model.module, fp32, stats, quantized, bits, cfg.equalize_strength, masks)  # type: ignore[arg-type]
    report["initializers_updated"] = refresh_initializers(fp32, model.module)  # type: ignore[arg-type]
    return report
