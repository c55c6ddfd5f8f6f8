"""Filter pruning to a target: BN importance, allocation (ratio, per-block ratios, MAC budget), refusals,
the L1 baseline, the recipe keys, and label-free recovery kept in the plan."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from srtest import tiny_srresnet_bn
from torch import nn

from srdeploy.errors import RecipeError
from srdeploy.models.deploy_form import to_deploy_form
from srdeploy.quant.apply import apply_plan
from srdeploy.quant.plan import ModelRef, QuantPlan
from srdeploy.quant.plan_io import load_plan, save_plan
from srdeploy.recipe import SparsitySection, recipe_from_dict
from srdeploy.sparsity.bn_filter import channel_stats, prune_filters
from srdeploy.sparsity.filter_prune import prune_to_target
from srdeploy.sparsity.filter_recovery import recover
from srdeploy.sparsity.filter_targets import Block, allocate


def bn_cfg(**kw) -> SparsitySection:
    return SparsitySection(policy="bn_filter", **kw)


def test_importance_is_expected_post_relu_value_with_running_variance() -> None:
    bn = nn.BatchNorm2d(3, eps=0.5)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, 1.0]))
        bn.bias.copy_(torch.tensor([0.2, -1.0, 0.5]))
        bn.running_var.copy_(torch.tensor([0.5, 1.5, 4.5]))
    x = torch.randn(200_000, 3, 1, 1, generator=torch.Generator().manual_seed(0)) * bn.running_var.sqrt().view(
        1, 3, 1, 1
    )
    with torch.no_grad():
        sampled = torch.relu(bn.eval()(x + bn.running_mean.view(1, 3, 1, 1))).mean(dim=(0, 2, 3)).numpy()
    np.testing.assert_allclose(channel_stats(bn)["mean"], sampled, atol=4e-3)


def blocks3() -> list[Block]:
    return [
        Block("a", np.array([0.1, 0.2, 5.0, 6.0]), 10.0),
        Block("b", np.array([0.05, 4.0, 4.5, 7.0]), 10.0),
        Block("c", np.array([3.0, 3.1, 3.2, 3.3]), 20.0),
    ]


def test_global_ratio_removes_the_least_important_channels_of_all_blocks() -> None:
    counts = allocate(blocks3(), bn_cfg(bn_ratio=0.25), 1000.0, uniform=False)
    assert counts == {"a": 2, "b": 1, "c": 0}  # 3 of 12: scores 0.05, 0.1, 0.2
    assert allocate(blocks3(), bn_cfg(bn_ratio=0.25), 1000.0, uniform=True) == {"a": 1, "b": 1, "c": 1}


def test_cap_and_largest_valid_ratio() -> None:
    # a cap of half a block: "a" may lose 2 channels, so the 3rd lowest (0.2 in "a"... then 3.0 in "c") moves on
    counts = allocate(blocks3(), bn_cfg(bn_ratio=0.5, bn_max_fraction=0.5), 1000.0, uniform=False)
    assert counts == {"a": 2, "b": 2, "c": 2}
    with pytest.raises(RecipeError, match=r"bn_ratio = 0.6 cannot be met; the largest valid ratio is 0.5\b"):
        allocate(blocks3(), bn_cfg(bn_ratio=0.6, bn_max_fraction=0.5), 1000.0, uniform=False)
    # never empty a block: 3 of 4 channels is the most, even with bn_max_fraction = 1
    with pytest.raises(RecipeError, match=r"largest valid ratio is 0.75\b"):
        allocate(blocks3(), bn_cfg(bn_ratio=0.9, bn_max_fraction=1.0), 1000.0, uniform=False)


def test_layer_ratios_fixed_and_refused_when_they_empty_a_block() -> None:
    counts = allocate(blocks3(), bn_cfg(bn_layer_ratios={"c": 0.5}), 1000.0, uniform=False)
    assert counts == {"a": 0, "b": 0, "c": 2}
    with pytest.raises(RecipeError, match=r"bn_layer_ratios\[c\] = 0.99 removes 4 of 4 .* largest valid ratio is 0.75"):
        allocate(blocks3(), bn_cfg(bn_layer_ratios={"c": 0.99}, bn_max_fraction=1.0), 1000.0, uniform=False)
    with pytest.raises(RecipeError, match="'zz', not a prunable block"):
        allocate(blocks3(), bn_cfg(bn_layer_ratios={"zz": 0.5}), 1000.0, uniform=False)


def test_mac_budget() -> None:
    # dense body 200 MACs/pixel; keeping 90 % needs >= 20 removed: a(10) + b(10) (lowest scores 0.05, 0.1)
    counts = allocate(blocks3(), bn_cfg(bn_mac_budget=0.9), 200.0, uniform=False)
    assert counts == {"a": 1, "b": 1, "c": 0}
    with pytest.raises(RecipeError, match=r"smallest valid budget is 0.6\b"):  # caps: 2+2+2 channels = 80 MACs
        allocate(blocks3(), bn_cfg(bn_mac_budget=0.5), 200.0, uniform=False)


def test_prune_to_target_on_srresnet_bn() -> None:
    model = tiny_srresnet_bn(dead=[])
    structure, report = prune_filters(model, bn_cfg(bn_ratio=0.25))
    assert report["channels_removed"] == 8 and report["ratio_removed"] == 0.25
    scores = {f"body.{i}": channel_stats(model.module.body[i].bn1)["mean"] for i in (0, 1)}
    threshold = np.sort(np.concatenate(list(scores.values())))[7]
    for g in structure:
        s = scores[g.producers[0].removesuffix(".conv1.weight")]
        assert all(s[c] <= threshold for c in g.removed) and all(s[c] >= threshold for c in g.keep)
        np.testing.assert_allclose(g.constants, s[list(g.removed)], rtol=1e-6)  # expected value folded
    l1, _ = prune_to_target(model, SparsitySection(policy="l1_filter", bn_ratio=0.25))
    assert [len(g.removed) for g in l1] == [4, 4] and l1[0].constants is None
    norms = model.module.body[0].conv1.weight.detach().abs().sum(dim=(1, 2, 3)).numpy()
    assert set(l1[0].removed) == set(np.argsort(norms)[:4].tolist())


def test_bn_pruning_without_batchnorm_names_the_policies_that_apply() -> None:
    folded = to_deploy_form(copy.deepcopy(tiny_srresnet_bn()))
    with pytest.raises(RecipeError, match=r"has none .*use sparsity.policy l1_filter .* or uniform or sls") as err:
        prune_filters(folded, bn_cfg(bn_ratio=0.3))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "sparsity, match",
    [
        ({"policy": "bn_filter", "bn_ratio": 0.3, "bn_mac_budget": 0.5}, "set one of bn_ratio"),
        ({"policy": "uniform", "bn_ratio": 0.3}, "apply to policy bn_filter or l1_filter"),
        ({"policy": "l1_filter"}, "l1_filter needs a target"),
        ({"policy": "bn_filter", "bn_ratio": 1.0}, r"sparsity\.bn_ratio"),
        ({"policy": "bn_filter", "bn_layer_ratios": {"body.0": 0}}, r"sparsity\.bn_layer_ratios"),
    ],
)
def test_recipe_keys_refused_in_one_line(sparsity: dict, match: str) -> None:
    with pytest.raises(RecipeError, match=match) as err:
        recipe_from_dict({"name": "x", "model": {"name": "srresnet_bn_x4"}, "sparsity": sparsity})
    assert "\n" not in str(err.value)


def test_recovery_reduces_error_and_the_plan_alone_reproduces_it(tmp_path) -> None:
    model = tiny_srresnet_bn(dead=[])
    dense = to_deploy_form(copy.deepcopy(model))
    structure, _ = prune_filters(model, bn_cfg(bn_ratio=0.4))
    patches = np.random.default_rng(0).random((8, 3, 16, 16), dtype=np.float32)
    fitted, rows = recover(dense, structure, patches)
    assert all(r["refit"] for r in rows) and all(g.consumer_weight is not None for g in fitted)
    assert fitted[0].consumer_weight.shape == (16, len(fitted[0].keep), 3, 3)
    x = torch.from_numpy(np.random.default_rng(1).random((4, 3, 16, 16), dtype=np.float32))

    def err(groups) -> float:
        plan = QuantPlan(model=ModelRef("srresnet", "tiny", 2), layers=(), structure=tuple(groups))
        with torch.no_grad():
            return float(((apply_plan(dense.module, plan)(x) - dense.module(x)) ** 2).mean())

    assert err(fitted) < 0.5 * err(structure)  # held-out images: recovery generalizes
    plan = QuantPlan(model=ModelRef("srresnet", "tiny", 2), layers=(), structure=fitted)
    save_plan(plan, tmp_path / "plan.json")
    again = load_plan(tmp_path / "plan.json").structure
    assert err(again) == err(fitted)
    np.testing.assert_array_equal(again[1].consumer_bias, fitted[1].consumer_bias)
