"""Per-layer sensitivity: checked against simulations computed independently with simulate()."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from srtest import exported, plan_for, recipe, tiny_edsr

from srdeploy.calib.sensitivity import keep_float, layer_sensitivity, sensitivity_table
from srdeploy.quant.apply import apply_plan
from srdeploy.quant.simulate import simulate

X = [torch.from_numpy(np.random.default_rng(3).random((2, 3, 16, 16)).astype(np.float32))]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    model = tiny_edsr(blocks=2, feats=16)
    proto, graph = exported(model, tmp_path_factory.mktemp("sens"))
    r = recipe(dict(weight_bits=8, act_bits=4, method="minmax", quantize_roles=["body", "upsampler", "tail"]))
    return model, plan_for(model, proto, graph, r)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * np.log10(1.0 / torch.mean((a - b) ** 2).item()))


def test_full_quantization_matches_the_simulation(built) -> None:
    model, plan = built
    full_db, table = layer_sensitivity(model.module, plan, X, profile="trt")
    with torch.no_grad():
        ref = apply_plan(model.module, plan)(X[0])
        q = simulate(model, plan, "trt")(X[0])
    assert full_db == pytest.approx(_psnr(ref, q), abs=1e-3)
    convs = {x.name for x in table if x.kind == "conv"}
    assert convs == {x.weight for x in plan.quantized_layers()}
    assert sum(x.macs_share for x in table) == pytest.approx(1.0)


def test_alone_equals_a_plan_with_only_that_layer_quantized(built) -> None:
    model, plan = built
    _, table = layer_sensitivity(model.module, plan, X, profile="trt")
    row = next(x for x in table if x.kind == "conv" and x.sites)
    t = plan.tier(plan.default_tier)
    only = {"trt": {s: v for s, v in t.sites("trt").items() if s in row.sites}}
    plan1 = replace(
        plan,
        weights={row.name: plan.weights[row.name]},
        layers=tuple(x if x.weight == row.name else replace(x, quantized=False) for x in plan.layers),
        tiers=(replace(t, activations=only),),
    )
    with torch.no_grad():
        ref = apply_plan(model.module, plan)(X[0])
        q = simulate(model, plan1, "trt", t.index)(X[0])
    assert row.alone_db == pytest.approx(_psnr(ref, q), abs=1e-3)
    assert row.alone_db > layer_sensitivity(model.module, plan, X, profile="trt")[0]  # one layer < all layers


def test_keep_float_respects_the_budget_and_prefers_gain_per_mac(built) -> None:
    model, plan = built
    full_db, table = layer_sensitivity(model.module, plan, X, profile="trt")
    share = {x.name: x.macs_share for x in table}
    for budget in (0.0, 0.1, 0.3, 1.0):
        chosen = keep_float(table, budget, min_gain_db=0.0)
        assert sum(share[c] for c in chosen) <= budget + 1e-9
    everything = keep_float(table, 1.0, min_gain_db=0.0)
    assert set(everything) == {x.name for x in table if x.kind == "conv" and x.float_gain_db >= 0}
    rows = sensitivity_table(full_db, table)["rows"]
    gains = [r[3] for r in rows]
    assert gains == sorted(gains, reverse=True)
