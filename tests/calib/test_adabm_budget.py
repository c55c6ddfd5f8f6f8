"""AdaBM in seconds: shared observer statistics, FAB-targeted tiers, adaptive over static DAQ ranges, and a
refinement that never raises the held-out loss and keeps to its time budget (tiny model)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from srtest import context, exported, patches, recipe, tiny_edsr

from srdeploy.calib.bits import adabm, tier_fab
from srdeploy.calib.observers import candidate_sites, observe
from srdeploy.calib.refine import refine
from srdeploy.pipeline import PLAN_STEPS
from srdeploy.quant.simulate import simulate
from srdeploy.recipe import RefineSection
from srdeploy.stages.context import initial_plan
from srdeploy.stages.refine import refine_step

W4A4 = dict(weight_bits=4, act_bits=4)


def test_sites_observed_together_get_the_statistics_they_get_alone() -> None:
    """One reduction per tensor is shared by the sites that see it; an in-place ReLU makes it a new tensor."""
    model = tiny_edsr(blocks=2, feats=8)
    convs = [n for n, p in model.module.named_parameters() if n.endswith("weight") and p.ndim == 4]
    names = candidate_sites(model.module, convs)
    x = patches(6, 16, seed=3)
    together = observe(model.module, names, x, batch_size=4)
    for name in names:
        alone = observe(model.module, [name], x, batch_size=4)[name]
        for field in ("min", "max", "ema_min", "ema_max", "ch_mean", "ch_std", "ch_min", "ch_max", "img_std", "sample"):
            np.testing.assert_allclose(getattr(together[name], field), getattr(alone, field), rtol=1e-6, err_msg=name)
    # the statistics are those of the tensor: conv1's output (before the in-place ReLU) has negative values
    assert together["body.0.body.0.weight@output"].min < 0 <= together["body.0.body.2.weight@input"].min


def test_fab_target_moves_the_high_threshold() -> None:
    rng = np.random.default_rng(0)
    c = rng.random(200) * 100
    stds = {f"l{i}": float(i) for i in range(10)}
    free = adabm(4, stds, c)
    for target in (4.0, 4.05):
        held = adabm(4, stds, c, target_fab=target)
        lo, hi = held.thresholds
        share = {-1: np.mean(c < lo), 1: np.mean(c >= hi)}
        share[0] = 1 - share[-1] - share[1]
        fab = sum(share[o] * tier_fab(4, o, held.layer_offsets, stds) for o in (-1, 0, 1))
        assert fab <= target + 1e-9
        # tight: one more patch routed high would break the target (or the percentile already caps it)
        one_more = fab + (tier_fab(4, 1, held.layer_offsets, stds) - tier_fab(4, 0, held.layer_offsets, stds)) / 200
        assert one_more > target or hi == free.thresholds[1]
        assert hi >= free.thresholds[1] and lo == free.thresholds[0]
    assert adabm(4, stds, c, target_fab=8.0).thresholds == free.thresholds  # the percentile caps the high share


def test_flat_high_gives_the_flattest_the_extra_bit_within_the_fab_target() -> None:
    rng = np.random.default_rng(1)
    c = rng.random(200) * 100
    stds = {f"l{i}": float(i) for i in range(10)}
    free = adabm(4, stds, c, use_layer=False, image_percentiles=(50.0, 80.0), image_order="flat_high")
    assert free.tier_offsets == (1, 0, -1)  # ascending complexity: flattest +1, busiest -1
    assert free.bits("l0", 0) == 5 and free.bits("l0", 2) == 3
    sel = free.selector()
    assert sel.route(float(np.min(c))) == 0 and sel.route(float(np.max(c))) == 2
    for target in (4.0, 4.2):
        held = adabm(4, stds, c, use_layer=False, image_percentiles=(50.0, 80.0), image_order="flat_high",
                     target_fab=target)  # fmt: skip
        lo, hi = held.thresholds
        fab = 5 * np.mean(c < lo) + 4 * np.mean((c >= lo) & (c < hi)) + 3 * np.mean(c >= hi)
        assert fab <= target + 1e-9
        assert fab + 1 / 200 > target or lo == free.thresholds[0]  # tight, or the percentile caps it
        assert lo <= free.thresholds[0] and hi == free.thresholds[1]
    # an upper percentile of 100: no -1 tier at all, not even for content busier than every patch
    two = adabm(4, stds, c, use_layer=False, image_percentiles=(20.0, 100.0), image_order="flat_high", target_fab=4.2)
    assert two.tier_offsets == (1, 0) and len(two.thresholds) == 1
    assert two.selector().route(1e9) == 1 and np.mean(c < two.thresholds[0]) <= 0.2 + 1e-9
    assert adabm(4, stds, c, use_layer=False, image_percentiles=(0.0, 80.0)).tier_offsets == (0, 1)


def built(quant: dict, data: np.ndarray, tmp_path, name: str):
    model = tiny_edsr(blocks=2, feats=8)
    ctx = context(model, *exported(model, tmp_path / name), recipe(quant))
    ctx.patches = data
    plan = initial_plan(ctx)
    for step in PLAN_STEPS:
        plan = step(ctx, plan)
    return model, ctx, plan


def sr_error(model, plan, tier: int, x: np.ndarray) -> float:
    with torch.no_grad():
        ref = model.module(torch.from_numpy(x))
        out = simulate(model, plan, "trt", tier)(torch.from_numpy(x))
    return float((out - ref).abs().mean())


@pytest.mark.slow
def test_adaptive_tiers_start_from_the_static_daq_plan(tmp_path) -> None:
    data = patches(12, 16, seed=5)
    model, _, static = built(dict(**W4A4, method="daq"), data, tmp_path, "daq")
    _, _, ada = built(
        dict(**W4A4, method="adabm", adaptive={"enabled": True, "layer_bits": False}), data, tmp_path, "ada"
    )
    assert ada.equalization and len(ada.tiers) == 3
    base = ada.tier(ada.default_tier)
    for profile in ("trt", "ort"):
        for site, spec in static.tier(static.default_tier).sites(profile).items():
            assert base.sites(profile)[site].same_grid(spec), site
    # the high tier (5-bit body inputs on the same ranges) is no worse than the static W4A4 plan
    x = patches(6, 16, seed=11)
    assert sr_error(model, ada, 2, x) <= sr_error(model, static, static.default_tier, x)
    assert sr_error(model, ada, 1, x) == pytest.approx(sr_error(model, static, static.default_tier, x), rel=1e-6)


def test_refinement_never_raises_the_held_out_loss_and_then_changes_nothing(tmp_path, monkeypatch) -> None:
    torch.set_num_threads(1)
    data = patches(12, 16, seed=2)
    quant = dict(**W4A4, method="adabm", adaptive={"enabled": True})
    model, ctx, plan = built(quant, data, tmp_path, "start")
    # learning rates this large wreck every clip: without keeping the best state the loss would rise
    rc = RefineSection(steps=12, batch_size=4, phases=3, patience=10, lr_bounds=3.0, lr_thresholds=50.0)
    result = refine(model.module, plan, data, rc, "trt")
    assert result.steps == 12 and result.holdout_after <= result.holdout_before
    assert result.losses and max(result.losses) > result.losses[0]  # training itself did go wrong
    ctx.recipe = recipe({**quant, "refine": rc.model_dump()})
    monkeypatch.setattr("srdeploy.stages.refine.calib_patches", lambda *a: data)
    after = refine_step(ctx, plan)
    record = after.provenance.refinement
    assert record["holdout_loss_after"] <= record["holdout_loss_before"] and record["steps"] == 12
    assert ctx.reports["calibration_time"]["refinement_s"] > 0
    if not record["improved"]:  # the calibrated plan itself, with the record of the attempt
        assert record["kept"] == "calibrated start"
        fields = ("ranges", "weights", "bits", "tiers")
        assert all(getattr(after, f) == getattr(plan, f) for f in fields)


def test_refinement_keeps_to_the_time_budget(tmp_path) -> None:
    torch.set_num_threads(1)
    data = patches(12, 16, seed=4)
    quant = dict(**W4A4, method="adabm", adaptive={"enabled": True})
    model, ctx, plan = built(quant, data, tmp_path, "budget")
    rc = RefineSection(steps=100_000, batch_size=4, phases=1000, patience=1000)
    budget = 1.5
    t0 = time.perf_counter()
    result = refine(model.module, plan, data, rc, "trt", time_budget_s=budget)
    wall = time.perf_counter() - t0
    assert result.stopped == "time budget" and 0 < result.steps < rc.steps
    # the budget covers the steps and the held-out checks; allow for one slow step on a loaded machine
    assert result.seconds <= budget * 1.5 and wall <= budget * 1.5 + 1.0
    # calibration that used up the budget leaves no refinement, and says so
    ctx.recipe = recipe({**quant, "refine": {"steps": 5}}, calib={"time_budget_s": 2.0})
    ctx.seconds["calibrate"] = 2.5
    after = refine_step(ctx, plan)
    assert after.provenance.refinement["stopped"] == "no time left in calib.time_budget_s"
    assert after.ranges is plan.ranges and after.tiers is plan.tiers
    assert ctx.reports["calibration_time"]["within_budget"] is False
