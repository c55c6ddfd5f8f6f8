"""The held-out guard of the N:M re-fit: deterministic split, plain masks where the re-fit overfits, augmentation
views on the right side of the split, recipe keys, and the choice recorded in the plan and the report."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from srtest import patches, tiny_edsr

from srdeploy.calib.layers import layer_infos
from srdeploy.quant.apply import with_masks
from srdeploy.quant.plan import NMMask
from srdeploy.recipe import recipe_from_dict
from srdeploy.sparsity.common import conv_order
from srdeploy.sparsity.nm import nm_mask, satisfies
from srdeploy.sparsity.refit import refit, solve_rows
from srdeploy.sparsity.refit_guard import HELD, Guard, augment, choose, dihedral, fitting_set, holdout_groups
from srdeploy.sparsity.uniform import uniform_masks


def test_holdout_split_is_deterministic_evenly_spaced_and_never_empty() -> None:
    g = holdout_groups(64, 0.25)
    assert np.array_equal(g, holdout_groups(64, 0.25))
    assert np.array_equal(np.flatnonzero(g == HELD), np.arange(3, 64, 4))
    assert holdout_groups(2, 0.25).tolist() == [0, 1]  # one patch on each side
    assert holdout_groups(1, 0.5).tolist() == [0]  # nothing to hold out
    assert (holdout_groups(10, 0.5) == HELD).sum() == 5


def test_augmented_views_keep_their_patch_side_and_are_dihedral() -> None:
    x = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    groups = np.array([0, 1])
    out, labels = augment(x, groups, 3)
    assert out.shape == (6, 3, 4, 4) and labels.tolist() == [0, 1, 0, 1, 0, 1]
    np.testing.assert_array_equal(out[2], np.rot90(x[0], 1, axes=(1, 2)))  # patch 0, view 1: a quarter turn
    np.testing.assert_array_equal(out[3], np.rot90(x[1], 2, axes=(1, 2)))  # patch 1's views start one later
    np.testing.assert_array_equal(dihedral(x, 4), x[..., ::-1])
    assert len({out[i].tobytes() for i in (0, 2, 4)}) == 3
    fit, labels = fitting_set(x, Guard(holdout=0.5), 1)
    assert fit is x and labels.tolist() == [0, 1]


def test_a_large_ridge_towards_the_masked_weights_approaches_plain_masking() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 8, 3, 3))
    b = rng.normal(size=4)
    keep = nm_mask(w, 2, 4)
    x = np.concatenate([rng.normal(size=(300, 72)), np.ones((300, 1))], 1)
    w_big, b_big = solve_rows(w, b, keep, x.T @ x, ridge=1e4, prior=(w * keep, b))
    np.testing.assert_allclose(w_big * keep, w * keep, atol=1e-3)
    np.testing.assert_allclose(b_big, b, atol=1e-3)
    w_small, _ = solve_rows(w, b, keep, x.T @ x, ridge=1e-4, prior=(w * keep, b))
    assert np.abs(w_small * keep - w * keep).max() > 0.05  # a small ridge really re-fits


def test_guard_keeps_the_plain_mask_when_the_refit_only_fits_the_calibration_input() -> None:
    """Calibration input where every pruned channel copies a kept one: the re-fit moves the pruned weights onto
    the kept copy, exact there and wrong on held-out input where the channels are independent."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 4, 1, 1))
    w[:, :2] = 2 + np.abs(w[:, :2])  # inputs 0, 1 kept by magnitude (and by importance: equal input energy)
    keep = nm_mask(w, 2, 4)
    assert keep[:, :2].all() and not keep[:, 2:].any()
    mask = NMMask(n=2, m=4, keep=keep)
    x = rng.normal(size=(400, 2))
    fit = np.concatenate([x, x, np.ones((400, 1))], 1)  # inputs 2, 3 == inputs 0, 1
    held = np.concatenate([rng.normal(size=(100, 4)), np.ones((100, 1))], 1)
    fitted, row = choose(w, np.zeros(3), mask, fit.T @ fit, held.T @ held, Guard(ridges=(0.01, 0.1)))
    assert row["choice"] == "plain" and not row["refit"]
    assert fitted.fit == "guard:magnitude" and fitted.weight is None and np.array_equal(fitted.keep, keep)
    assert min(v for k, v in row["held_out_rel_error"].items() if k != "plain") > row["held_out_rel_error"]["plain"]
    # where held-out input looks like the calibration input, the re-fit wins
    same = np.concatenate([rng.normal(size=(100, 2))] * 2 + [np.ones((100, 1))], 1)
    fitted, row = choose(w, np.zeros(3), mask, fit.T @ fit, same.T @ same, Guard(ridges=(0.01, 0.1)))
    assert row["refit"] and fitted.fit.startswith("guard:") and satisfies(fitted.weight, 2, 4)


def _error(model, masks, x: np.ndarray) -> float:
    with torch.no_grad():
        t = torch.from_numpy(x)
        return float(((with_masks(model.module, masks)(t) - model.module(t)) ** 2).mean())


def test_guarded_refit_with_few_patches_is_not_worse_than_plain_masks_on_new_patches() -> None:
    """4 patches of 3x3 pixels (fewer im2col rows than unknowns per output channel): the unguarded re-fit
    overfits; the guard keeps plain masks where the held-out patch says so."""
    model = tiny_edsr(blocks=2, feats=16)
    layers = layer_infos(model, conv_order(model.module))
    masks, _ = uniform_masks(model, layers, 2, 4, ("body",))
    order = [x.weight for x in layers]
    few = patches(4, 3, seed=5)
    guarded, rows = refit(model, masks, order, few, guard=Guard())
    unguarded = refit(model, masks, order, few)[0]
    new = patches(8, 16, seed=9)
    assert _error(model, unguarded, new) > _error(model, masks, new)  # the over-fit this guards against
    assert _error(model, guarded, new) <= _error(model, masks, new)
    assert any(r["choice"] == "plain" for r in rows)


def test_refit_guard_recipe_keys_round_trip_and_reject_bad_values() -> None:
    base = {"name": "r", "model": {"name": "edsr_baseline_x4"}, "sparsity": {"policy": "uniform"}}
    keys = dict(refit_guard=False, refit_ridges=[0.5, 2.0], refit_holdout=0.5, refit_augment=4)
    r = recipe_from_dict({**base, "sparsity": {"policy": "uniform", **keys}})
    again = recipe_from_dict(r.model_dump(mode="json", by_alias=True))
    assert again == r and again.sparsity.refit_ridges == (0.5, 2.0) and again.sparsity.refit_augment == 4
    assert r.digest != recipe_from_dict(base).digest
    for bad in (dict(refit_ridges=[]), dict(refit_ridges=[0.0]), dict(refit_holdout=0.9), dict(refit_augment=9)):
        with pytest.raises(Exception, match="refit_"):
            recipe_from_dict({**base, "sparsity": {"policy": "uniform", **bad}})


def test_the_guard_choice_lands_in_the_plan_file_and_the_sparsity_report(tmp_path) -> None:
    from srdeploy.quant.plan import ModelRef, QuantPlan
    from srdeploy.quant.plan_io import load_plan, save_plan
    from srdeploy.recipe import SparsitySection
    from srdeploy.sparsity.api import choose_masks
    from srdeploy.stages.sparsity import sparsity_summary

    model = tiny_edsr(blocks=2, feats=16)
    layers = layer_infos(model, conv_order(model.module))
    cfg = SparsitySection(policy="uniform", refit_guard=True, refit_ridges=(0.1,), sensitivity_patches=4)
    masks, report = choose_masks(model, tuple(layers), patches(8, 8), cfg, seed=0)
    fits = {m.fit for m in masks.values()}
    assert fits and all(f in ("guard:magnitude", "guard:importance@0.1", "guard:magnitude@0.1") for f in fits)
    summary = sparsity_summary({}, report)["refit"]
    assert summary["guard"] and summary["ridges"] == [0.1] and sum(summary["choices"].values()) == len(masks)
    save_plan(QuantPlan(model=ModelRef("edsr", "tiny", 2), layers=tuple(layers), masks=masks), tmp_path / "p.json")
    assert {k: m.fit for k, m in load_plan(tmp_path / "p.json").masks.items()} == {k: m.fit for k, m in masks.items()}
    off = SparsitySection(policy="uniform", refit_guard=False, sensitivity_patches=4)
    masks, report = choose_masks(model, tuple(layers), patches(8, 8), off, seed=0)
    assert {m.fit for m in masks.values()} == {"refit"} and report["refit_summary"]["guard"] is False
