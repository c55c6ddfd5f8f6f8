"""Least-squares re-fit after N:M pruning: better than plain magnitude masks, patterns kept."""

from __future__ import annotations

import numpy as np
import torch
from srtest import patches, tiny_edsr

from srdeploy.calib.layers import layer_infos
from srdeploy.quant.apply import with_masks
from srdeploy.quant.plan import QuantPlan
from srdeploy.sparsity.common import conv_order
from srdeploy.sparsity.nm import satisfies
from srdeploy.sparsity.refit import refit, solve_rows
from srdeploy.sparsity.uniform import uniform_masks


def output_error(model, masks, x: np.ndarray) -> float:
    pruned = with_masks(model.module, masks)
    with torch.no_grad():
        t = torch.from_numpy(x)
        return float(((pruned(t) - model.module(t)) ** 2).mean())


def test_refit_beats_magnitude_masks_on_held_out_patches() -> None:
    model = tiny_edsr(blocks=3, feats=16)
    layers = layer_infos(model, conv_order(model.module))
    masks, _ = uniform_masks(model, layers, 2, 4, ("body",))
    fitted, rows = refit(model, masks, [x.weight for x in layers], patches(24, 16))
    for m in fitted.values():
        assert satisfies(m.weight, 2, 4) and m.keep.mean() == 0.5 and m.bias is not None
    assert all(r["rel_output_error_refit"] <= r["rel_output_error_masked"] for r in rows)
    held = patches(8, 16, seed=42)
    assert output_error(model, fitted, held) < 0.7 * output_error(model, masks, held)


def test_solve_rows_recovers_the_dense_layer_when_nothing_is_pruned() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 2, 3, 3)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    x = np.concatenate([rng.normal(size=(500, 18)), np.ones((500, 1))], 1)
    w2, b2 = solve_rows(w, b, np.ones_like(w, bool), x.T @ x)
    np.testing.assert_allclose(w2, w, atol=0.05)
    np.testing.assert_allclose(b2, b, atol=0.05)


def test_refitted_weights_survive_the_plan_file_and_apply_plan(tmp_path) -> None:
    from srdeploy.quant.plan import ModelRef
    from srdeploy.quant.plan_io import load_plan, save_plan

    model = tiny_edsr(blocks=2, feats=8)
    layers = layer_infos(model, conv_order(model.module))
    masks, _ = uniform_masks(model, layers, 2, 4, ("body",))
    fitted, _ = refit(model, masks, [x.weight for x in layers], patches(8, 16))
    plan = QuantPlan(model=ModelRef("edsr", "tiny", 2), layers=layers, masks=fitted)
    save_plan(plan, tmp_path / "plan.json")
    loaded = load_plan(tmp_path / "plan.json").masks
    assert loaded.keys() == fitted.keys()
    for k, m in fitted.items():
        np.testing.assert_array_equal(loaded[k].weight, m.weight)
        np.testing.assert_array_equal(loaded[k].bias, m.bias)
    copy_ = dict(with_masks(model.module, loaded).named_parameters())
    k = next(iter(fitted))
    np.testing.assert_array_equal(copy_[k].detach().numpy(), fitted[k].weight)
    np.testing.assert_array_equal(copy_[k.removesuffix("weight") + "bias"].detach().numpy(), fitted[k].bias)
    x = patches(2, 16, seed=3)
    assert output_error(model, fitted, x) == float(
        ((with_masks(model.module, fitted)(torch.from_numpy(x)) - model.module(torch.from_numpy(x))) ** 2)
        .mean()
        .detach()
    )
