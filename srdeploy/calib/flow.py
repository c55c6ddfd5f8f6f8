"""calibrate(): observers -> bit allocation -> ranges -> specs -> QuantPlan, for one model."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from srdeploy.calib import bits as bit_alloc
from srdeploy.calib.calibrate import (
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
    return CalibrationRun(plan=plan, stats=stats, alloc=alloc, ranges=ranges, seconds=seconds)
