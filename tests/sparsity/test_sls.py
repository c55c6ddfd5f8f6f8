"""SLS-style layer-wise N:M: the knapsack solver, the MAC budget, and layer preferences."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from srtest import patches, tiny_edsr

from srdeploy.calib.layers import layer_infos
from srdeploy.errors import PlanError
from srdeploy.recipe import SparsitySection
from srdeploy.sparsity.common import conv_order
from srdeploy.sparsity.nm import satisfies
from srdeploy.sparsity.sls import choose, solve_budget


def _setup(scale_layer: str | None = None):
    model = tiny_edsr(feats=8, blocks=3)
    if scale_layer:
        with torch.no_grad():
            dict(model.module.named_parameters())[scale_layer].mul_(1e-3)
    return model, layer_infos(model, conv_order(model.module))


def _body_fraction(layers, masks) -> float:
    body = [x for x in layers if x.role == "body"]
    dense = sum(x.macs_per_lr_pixel for x in body)
    sparse = sum(x.macs_per_lr_pixel * (masks[x.weight].keep.mean() if x.weight in masks else 1.0) for x in body)
    return sparse / dense


@pytest.mark.parametrize("seed", range(6))
def test_solver_matches_brute_force_and_respects_capacity(seed: int) -> None:
    rng = np.random.default_rng(seed)
    items, options = 5, 4
    costs = rng.uniform(1, 10, (items, options)).tolist()
    values = rng.uniform(0, 1, (items, options)).tolist()
    capacity = float(rng.uniform(sum(min(r) for r in costs), sum(max(r) for r in costs)))
    best = min(
        (sum(values[i][j] for i, j in enumerate(p)), p)
        for p in itertools.product(range(options), repeat=items)
        if sum(costs[i][j] for i, j in enumerate(p)) <= capacity
    )
    pick = solve_budget(costs, values, capacity)
    assert pick is not None
    assert sum(costs[i][j] for i, j in enumerate(pick)) <= capacity
    # discretisation (4096 bins) may cost a little optimality, never the budget
    assert sum(values[i][j] for i, j in enumerate(pick)) <= best[0] + 0.05


def test_solver_infeasible_and_tight() -> None:
    assert solve_budget([[2.0, 1.0]], [[0.0, 1.0]], 0.5) is None
    assert solve_budget([[3.0, 1.0], [3.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]], 2.0) == [1, 1]  # exactly at budget
    assert solve_budget([], [], 1.0) == []


@pytest.mark.parametrize("budget", [0.25, 0.3, 0.5, 0.62, 0.9, 1.0])
def test_budget_is_respected(budget: float) -> None:
    model, layers = _setup()
    cfg = SparsitySection(policy="sls", mac_budget=budget, sensitivity_patches=4, bias_correction=False)
    masks, report = choose(model, layers, patches(8, 16), cfg, seed=0)
    frac = _body_fraction(layers, masks)
    assert frac <= budget + 1e-9
    assert report["achieved_fraction"] == pytest.approx(frac)
    assert all(x.role == "body" for x in layers if x.weight in masks)
    params = dict(model.module.named_parameters())
    for name, mask in masks.items():
        assert satisfies(params[name].detach().numpy() * mask.keep, mask.n, mask.m)
    if budget == 1.0:
        assert masks == {}  # nothing needs pruning, and every prune costs accuracy


def test_infeasible_budget_is_refused() -> None:
    model, layers = _setup()
    with pytest.raises(PlanError, match="mac_budget"):
        choose(model, layers, patches(4, 16), SparsitySection(policy="sls", mac_budget=0.2), seed=0)


def test_prefers_pruning_the_insensitive_layer() -> None:
    # block 1's second conv scaled by 1e-3: pruning either conv of block 1 barely changes the output.
    model, layers = _setup(scale_layer="body.1.body.2.weight")
    body = [x for x in layers if x.role == "body"]
    insensitive = {"body.1.body.0.weight", "body.1.body.2.weight"}
    # room for exactly 2 of 7 equal body convs at 2:4, or both insensitive ones at 1:4
    budget = (len(body) - 1.0) / len(body)
    cfg = SparsitySection(policy="sls", mac_budget=budget, sensitivity_patches=8)
    masks, report = choose(model, layers, patches(8, 16), cfg, seed=0)
    assert set(masks) == insensitive
    rows = {r["weight"]: r for r in report["layers"]}
    others = [rows[x.weight]["sensitivities"]["2:4"] for x in body if x.weight not in insensitive]
    assert rows["body.1.body.2.weight"]["sensitivities"]["2:4"] < 1e-3 * min(others)
    # a uniform budget: the insensitive layers take the sparsest pattern
    masks, _ = choose(model, layers, patches(8, 16), SparsitySection(policy="sls", mac_budget=0.6), seed=0)
    assert all(masks[w].n == 1 for w in insensitive)
    assert _body_fraction(layers, masks) <= 0.6 + 1e-9


def test_report_fields() -> None:
    model, layers = _setup()
    _masks, report = choose(model, layers, patches(8, 16), SparsitySection(policy="sls", sensitivity_patches=4), 0)
    assert report["predicted_mse"] >= 0 and report["measured_mse"] >= 0
    assert report["forward_passes"] == 2 + 3 * 7  # dense + 3 candidates x 7 body convs + combined
    rows = {r["weight"]: r for r in report["layers"]}
    assert rows["tail.1.weight"]["reason"].startswith("role 'tail'")
    assert set(rows["body.0.body.0.weight"]["sensitivities"]) == {"dense", "3:4", "2:4", "1:4"}
