"""AdaBM-style allocation, tiers, routing and refinement on a tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from srtest import context, exported, patches, recipe, tiny_edsr

from srdeploy.calib.bits import adabm, layer_offsets_from_std
from srdeploy.calib.complexity import complexity
from srdeploy.calib.refine import refine, refined_plan
from srdeploy.calib.refine_student import make_student
from srdeploy.pipeline import PLAN_STEPS
from srdeploy.quant import sites
from srdeploy.quant.apply import deployed_weights
from srdeploy.quant.plan_io import load_plan, save_plan
from srdeploy.recipe import RefineSection
from srdeploy.stages.context import initial_plan
from srdeploy.validate import cost


def test_layer_offsets_follow_std_percentiles() -> None:
    stds = {f"l{i}": float(i) for i in range(10)}
    off = layer_offsets_from_std(stds, (30, 70))
    assert off["l0"] == -1 and off["l1"] == -1 and off["l9"] == 1 and off["l5"] == 0
    assert sum(v == -1 for v in off.values()) == 3 and sum(v == 1 for v in off.values()) == 3


def test_three_tiers_with_clamped_bits() -> None:
    alloc = adabm(2, {"a": 0.1, "b": 1.0, "c": 10.0}, np.linspace(0, 100, 101))
    assert alloc.tier_offsets == (-1, 0, 1) and alloc.thresholds == (pytest.approx(10.0), pytest.approx(90.0))
    assert alloc.bits("a", 0) == 2  # 2 - 1 - 1 clamped to 2
    assert alloc.bits("c", 2) == 4


def textured(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((3, 32, 32)).astype(np.float32)


def flat() -> np.ndarray:
    return np.full((3, 32, 32), 0.5, np.float32)


def test_complexity_orders_flat_below_textured() -> None:
    assert complexity(flat())[0] == 0.0 < 1.0 < complexity(textured())[0]
    assert complexity(textured().transpose(1, 2, 0))[0] == pytest.approx(complexity(textured())[0])


ADAPTIVE_W4A4 = dict(weight_bits=4, act_bits=4, method="adabm", adaptive={"enabled": True})


def calibrated(model, export, data, **quant):
    ctx = context(model, *export, recipe(quant))
    ctx.patches = data
    plan = initial_plan(ctx)
    for step in PLAN_STEPS:
        plan = step(ctx, plan)
    return plan


@pytest.fixture(scope="module")
def adaptive_run(tmp_path_factory):
    model = tiny_edsr(blocks=2, feats=8)
    export = exported(model, tmp_path_factory.mktemp("ada"))
    data = np.concatenate(
        [patches(8, 16), np.stack([flat()[:, :16, :16]] * 1), np.stack([textured(i)[:, :16, :16] for i in range(4)])]
    )
    return model, export, calibrated(model, export, data, **ADAPTIVE_W4A4), data


def test_tiers_routing_and_fab(adaptive_run, tmp_path: Path) -> None:
    _, _, plan, _ = adaptive_run
    assert [t.name for t in plan.tiers] == ["low", "base", "high"]
    assert plan.selector.route(float(complexity(flat())[0])) == 0
    # 2-px stripes: much busier than any calibration patch (a 1-px checkerboard is invisible to Sobel)
    checker = (np.indices((32, 32))[1] // 2) % 2 * np.ones((3, 1, 1), np.float32)
    assert plan.selector.route(float(complexity(checker.astype(np.float32))[0])) == 2
    assert plan.selector.route(float(np.mean(plan.selector.thresholds))) == 1
    fabs = [cost.fab(plan, {t.index: 1.0}) for t in plan.tiers]
    assert fabs[0] < fabs[1] < fabs[2]
    body = [x.weight for x in plan.layers if x.role == "body"]
    for w in body:
        bits = [plan.tier(t).sites("trt")[sites.site(w, sites.INPUT)].bits for t in (0, 1, 2)]
        assert bits == sorted(bits) and bits[2] - bits[0] <= 2
    # the plan (tiers, selector, layer offsets) survives save and reload
    save_plan(plan, tmp_path / "plan.json")
    again = load_plan(tmp_path / "plan.json")
    assert again.selector == plan.selector and len(again.tiers) == 3
    assert again.bits == plan.bits and again.ranges == plan.ranges
    for t in plan.tiers:
        for p in ("trt", "ort"):
            for s, spec in t.sites(p).items():
                assert again.tier(t.index).sites(p)[s].same_grid(spec)
    assert cost.bitops(plan, {0: 1.0}) < cost.bitops(plan, {2: 1.0})


@pytest.mark.parametrize(
    ("profile", "options"),
    [
        ("trt", {}),
        ("ort", {}),
        ("ort", {"loss": "psnr", "learn_weights": False}),
        ("ort", {"loss": "drop", "learn_weights": False, "learn_bits": False}),
    ],
)
def test_refinement_lowers_the_loss_and_never_raises_it(adaptive_run, profile: str, options: dict) -> None:
    model, export, _, data = adaptive_run
    torch.set_num_threads(1)
    # A poor start (min/max weights and ranges) leaves room to improve.
    bad = calibrated(model, export, data, **{**ADAPTIVE_W4A4, "method": "minmax", "weight_method": "minmax"})
    rc = RefineSection(steps=40, batch_size=4, phases=4, patience=10, **options)
    # "drop": fp32's error vs HR per patch, here a spread of made-up values (flat patches most sensitive)
    err = np.geomspace(1e-5, 1e-3, len(data)).astype(np.float32) if rc.loss == "drop" else None
    result = refine(model.module, bad, data, rc, profile, fp32_err=err)
    assert result.holdout_after < result.holdout_before and result.loss == rc.loss
    if not rc.learn_weights:  # only activation clips moved
        start = make_student(model.module, bad, profile)
        assert all(
            np.allclose(result.weight_absmax[w], q.clip().detach().view(-1).numpy()) for w, q in start.weights.items()
        )
    if rc.loss != "l1" or profile != "trt":
        return
    plan = refined_plan(bad, result, recipe(ADAPTIVE_W4A4).quant, deployed_weights(model.module, bad))
    assert plan.provenance.refinement["improved"] and len(plan.tiers) == 3
    assert plan.selector.thresholds[0] <= plan.selector.thresholds[1]
    # a refinement that cannot help (no steps) keeps the held-out loss exactly where it started
    idle = refine(model.module, bad, data, RefineSection(steps=1, phases=1, lr_bounds=1e-9), "trt")
    assert idle.holdout_after <= idle.holdout_before


def test_refinement_student_is_the_deployed_network(tmp_path: Path) -> None:
    """The student starts from apply_plan: re-fitted sparse weights and biases, not trained weights x mask."""
    model = tiny_edsr(blocks=2, feats=8)
    export = exported(model, tmp_path)
    ctx = context(model, *export, recipe({"weight_bits": 8}, sparsity={"policy": "uniform", "refit": True}))
    sparse = initial_plan(ctx)
    for step in PLAN_STEPS:
        sparse = step(ctx, sparse)
    refitted = [w for w, m in sparse.masks.items() if m.weight is not None]
    assert refitted, "the re-fit changed no layer: the test would prove nothing"
    student = make_student(model.module, sparse, "trt")
    deployed = deployed_weights(model.module, sparse)
    named = dict(student.module.named_modules())
    for w in refitted:
        conv = named[w.removesuffix(".weight")]
        original = conv.parametrizations.weight.original.detach().numpy()
        np.testing.assert_array_equal(original, deployed[w])
        np.testing.assert_array_equal(conv.bias.detach().numpy(), deployed[w.removesuffix("weight") + "bias"])
        assert not np.array_equal(original, model.module.get_parameter(w).detach().numpy() * sparse.masks[w].keep)


@pytest.mark.parametrize("profile", ["trt", "ort"])
def test_refinement_gradients_reach_every_learned_clip(adaptive_run, profile: str) -> None:
    """Every weight and activation clip gets a gradient on either profile: the ort profile's fixed
    conv-output quantizers must pass gradients straight through (they cut them before, so an ort-first
    recipe refined nothing)."""
    model, _, plan, data = adaptive_run
    student = make_student(model.module, plan, profile)
    student.module(torch.from_numpy(data[:4])).abs().sum().backward()
    clips = [w.log_gain for w in student.weights.values()] + [q.g_hi for q in student.acts.values()]
    assert clips and all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in clips)


ORDERS = [("busy_high", False), ("flat_high", False), ("flat_high", True)]  # (image order, float residuals)


@pytest.mark.parametrize("profile", ["trt", "ort"])
@pytest.mark.parametrize(("order", "float_residuals"), ORDERS)
def test_refinement_student_computes_each_tiers_simulation(
    adaptive_run, order: str, float_residuals: bool, profile: str
) -> None:
    """Before any step the student is the simulation of the tier each sample routes to (either image order,
    a lone threshold included, a tier with a float residual stream too): refinement starts from what is
    deployed."""
    from srdeploy.calib.complexity import complexity_torch
    from srdeploy.calib.refine_student import float_stream, image_offsets
    from srdeploy.quant.simulate import simulate

    model, export, _, data = adaptive_run
    adaptive = {"enabled": True, "image_order": order, "high_tier_float_residuals": float_residuals}
    if order == "flat_high":
        adaptive["image_percentiles"] = [30, 100]  # one threshold: flat +1, the rest at base
    plan = calibrated(model, export, data, **{**ADAPTIVE_W4A4, "adaptive": adaptive})
    assert len(plan.bits.thresholds) == (2 if order == "busy_high" else 1)
    assert plan.bits.float_residual_tiers == ((0,) if float_residuals else ())
    if float_residuals:  # the flat tier has no grid on the residual stream; the base tier keeps them
        stream = {s for s, r in plan.ranges[profile].items() if r.residual}
        assert stream and not stream & set(plan.tier(0).sites(profile)) and stream <= set(plan.tier(1).sites(profile))
    student = make_student(model.module, plan, profile)
    x = torch.from_numpy(data)
    c = complexity_torch(x)
    student.ctx.image_offset = image_offsets(c, student.thresholds, student.tier_offsets)
    student.ctx.float_stream = float_stream(c, student.thresholds, student.float_residual_tiers)
    with torch.no_grad():
        got = student.module(x)
    routed = [plan.selector.route(float(v)) for v in c]
    assert len(set(routed)) == len(plan.tiers), "the patches do not reach every tier: the test would prove little"
    for i, tier in enumerate(routed):
        with torch.no_grad():
            want = simulate(model, plan, profile, tier=tier)(x[i : i + 1])
        if not float_residuals:
            np.testing.assert_allclose(got[i : i + 1].numpy(), want.numpy(), atol=2e-5)
            continue
        # a float residual stream carries the convolutions' batch-size-dependent rounding (~1e-6) into the
        # next grid, where it can flip a rounding: compare each sample run alone, and the batch loosely
        xi = x[i : i + 1]
        student.ctx.image_offset = image_offsets(c[i : i + 1], student.thresholds, student.tier_offsets)
        student.ctx.float_stream = float_stream(c[i : i + 1], student.thresholds, student.float_residual_tiers)
        with torch.no_grad():
            alone = student.module(xi)
        np.testing.assert_allclose(alone.numpy(), want.numpy(), atol=2e-5)
        assert float((got[i : i + 1] - want).abs().mean()) < 1e-3
