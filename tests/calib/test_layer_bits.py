"""Layer-to-bit map from measured sensitivity (calib/layer_bits.py, quant.adaptive.layer_map: sensitivity)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from srtest import context, exported, patches, recipe, tiny_edsr
from torch import nn

from srdeploy.calib.complexity import complexity
from srdeploy.calib.layer_bits import (
    NOISE_PER_BIT,
    input_site_errors,
    offsets_from_errors,
    predicted_error,
    representative_patches,
)
from srdeploy.calib.refine import _result
from srdeploy.calib.refine_student import make_student
from srdeploy.pipeline import PLAN_STEPS
from srdeploy.quant.spec import spec_for_range
from srdeploy.stages.context import initial_plan
from srdeploy.validate import cost


def brute_force(errors: dict[str, float], base: int, extra: float, low: int) -> float:
    """The lowest modelled error over every offset assignment within the budget (small cases only)."""
    names = sorted(errors)
    budget = int(np.floor(len(names) * (extra - low) + 1e-9))
    best = np.inf
    for combo in np.ndindex(*[8 - base - low + 1] * len(names)):
        if sum(combo) <= budget:
            offsets = {n: low + c for n, c in zip(names, combo, strict=True)}
            best = min(best, predicted_error(errors, offsets))
    return best


def test_greedy_allocation_is_optimal_for_the_noise_model_and_keeps_the_budget() -> None:
    rng = np.random.default_rng(0)
    for trial in range(20):
        errors = {f"l{i}": float(e) for i, e in enumerate(rng.random(4) ** 4)}
        extra, low = [0.25, 0.5, 1.0, 1.75][trial % 4], -(trial % 2)
        offsets = offsets_from_errors(errors, 4, extra, low)
        full = {n: offsets.get(n, 0) for n in errors}
        assert np.mean(list(full.values())) <= extra + 1e-9
        assert all(low <= o <= 4 for o in full.values())
        assert np.isclose(predicted_error(errors, offsets), brute_force(errors, 4, extra, low), rtol=1e-9)


def test_the_dominant_layer_takes_bits_until_others_matter_and_never_passes_8() -> None:
    errors = {"a": 100.0, "b": 1.0, "c": 0.9, "d": 0.0}
    assert offsets_from_errors(errors, 4, 0.25) == {"a": 1}  # one bit in all: to the dominant layer
    # a's fourth bit still cuts 100 * 3/4^4 = 1.17 > b's first 0.75; a then sits at 8 bits, b and c follow
    assert offsets_from_errors(errors, 4, 1.0) == {"a": 4}
    assert offsets_from_errors(errors, 4, 1.25) == {"a": 4, "b": 1}
    assert offsets_from_errors(errors, 4, 1.5) == {"a": 4, "b": 1, "c": 1}  # d (no error) never gains
    capped = offsets_from_errors({"a": 1e9, "b": 1.0}, 6, 3.0)
    assert capped["a"] == 2 and capped["b"] == 2  # a at 8 bits, the rest of the budget to b
    assert offsets_from_errors({"a": 1.0}, 4, 0.0) == {}
    # a lower floor pays for the sensitive layers with the insensitive ones
    assert offsets_from_errors({"a": 1000.0, "b": 1e-6, "c": 1e-6}, 4, 0.0, min_offset=-1) == {"a": 2, "b": -1, "c": -1}
    assert predicted_error({"a": 2.0}, {"a": 1}) == 2.0 / NOISE_PER_BIT


def test_representative_patches_span_flat_to_busy() -> None:
    x = patches(20, 16, seed=2)
    x[0] = 0.5  # a flat patch
    chosen = representative_patches(x, 4)
    assert len(chosen) == 4
    c, all_c = complexity(chosen), complexity(x)
    assert np.isclose(c.min(), all_c.min()) and np.isclose(c.max(), all_c.max())
    assert representative_patches(x[:3], 4) is not None and len(representative_patches(x[:3], 4)) == 3


class TwoConvs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 3, 1)
        self.b = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


def test_input_site_errors_measure_each_site_alone() -> None:
    torch.manual_seed(0)
    net = TwoConvs().eval()
    x = patches(4, 8, seed=1)
    coarse, fine = spec_for_range(-2.0, 2.0, 3, "asymmetric"), spec_for_range(-2.0, 2.0, 8, "asymmetric")
    errors = input_site_errors(net, {"a.weight": ("a.weight@input", coarse), "b.weight": ("b.weight@input", fine)}, x)
    assert errors["a.weight"] > 10 * errors["b.weight"] > 0
    swapped = input_site_errors(net, {"a.weight": ("a.weight@input", fine), "b.weight": ("b.weight@input", coarse)}, x)
    assert swapped["b.weight"] > 10 * swapped["a.weight"]
    # the hooks are removed: the module computes its float output again
    with torch.no_grad():
        y = torch.from_numpy(x)
        assert torch.equal(net(y), net.b(net.a(y)))


def test_build_with_the_measured_map_spends_the_bits_where_the_error_is(tmp_path: Path) -> None:
    model = tiny_edsr(blocks=2, feats=8)
    export = exported(model, tmp_path)
    adaptive = dict(enabled=True, layer_map="sensitivity", layer_extra_bits=0.5, image_bits=False, layer_patches=6)
    ctx = context(model, *export, recipe(dict(weight_bits=4, act_bits=4, method="adabm", adaptive=adaptive)))
    ctx.patches = patches(12, 16, seed=4)
    plan = initial_plan(ctx)
    for step in PLAN_STEPS:
        plan = step(ctx, plan)
    rows = dict(ctx.reports["layer_bits"])
    total = rows.pop("all (noise model)")
    body = [x.weight for x in plan.layers if x.quantized and x.role == "body"]
    assert sorted(rows) == sorted(body) and len(body) >= 4
    assert plan.bits.layer_offsets, "the map gave no layer a bit: the test would prove nothing"
    for w in body:
        assert rows[w]["bits"] == 4 + plan.bits.layer_offsets.get(w, 0)
        assert plan.tier(0).sites("trt")[f"{w}@input"].bits == rows[w]["bits"]
    assert cost.fab(plan, {0: 1.0}) <= 4.5 + 1e-9
    top = min(body, key=lambda w: rows[w]["psnr_alone_db"])
    assert plan.bits.layer_offsets.get(top, 0) == max(plan.bits.layer_offsets.values())
    assert total["psnr_mapped_db"] > total["psnr_alone_db"]
    mse = sum(10 ** (-r["psnr_alone_db"] / 10) for r in rows.values())
    assert np.isclose(total["psnr_alone_db"], 10 * np.log10(1 / mse), atol=0.02)
    assert list(rows) == sorted(rows, key=lambda w: rows[w]["psnr_alone_db"])  # most sensitive first
    # refinement keeps an offset beyond AdaBM's +-1 (it used to clamp a measured +3 to +1)
    wide = replace(plan, bits=replace(plan.bits, layer_offsets={w: 3 for w in body}))
    student = make_student(model.module, wide, "trt")
    assert all(float(q.bits().detach().max()) == 7.0 for q in student.acts.values())
    result = _result(student, [], 1.0, 1.0, 0.0, 0, "test")
    assert result.layer_offsets == {w: 3 for w in body}
