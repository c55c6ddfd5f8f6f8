"""BN-based filter pruning of SRResNet-BN blocks: scores, exactness, constant folding, reload."""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch
from srtest import tiny_srresnet_bn
from torch import nn

from srdeploy.errors import RecipeError
from srdeploy.export import export_onnx
from srdeploy.models.base import SRModel
from srdeploy.models.deploy_form import to_deploy_form
from srdeploy.quant.apply import apply_plan
from srdeploy.quant.plan import ModelRef, QuantPlan
from srdeploy.recipe import SparsitySection
from srdeploy.sparsity.bn_filter import channel_stats, prune_filters

DEAD = [1, 5, 9]
CFG = SparsitySection(policy="bn_filter")




def _x(h: int = 12, w: int = 14) -> torch.Tensor:
    return torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(1))


def test_channel_stats_match_monte_carlo() -> None:
    bn = nn.BatchNorm2d(4, eps=0.0)  # output std = |gamma| exactly (running_var 1)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 0.5, -2.0, 0.0]))
        bn.bias.copy_(torch.tensor([0.3, -1.0, 1.0, 0.4]))
    st = channel_stats(bn)
    z = np.random.default_rng(0).standard_normal((400_000, 1))
    samples = np.maximum(np.array([1.0, 0.5, 2.0, 0.0]) * z + np.array([0.3, -1.0, 1.0, 0.4]), 0.0)
    assert np.allclose(st["p_active"][:3], (samples[:, :3] > 0).mean(0), atol=3e-3)
    assert np.allclose(st["mean"], samples.mean(0), atol=3e-3)
    assert st["p_active"][3] == 1.0 and st["mean"][3] == pytest.approx(0.4)
    assert math.isclose(st["p_active"][1], 0.5 * (1 + math.erf(-2.0 / math.sqrt(2))), rel_tol=1e-9)


def deployed(model: SRModel, structure) -> torch.nn.Module:
    """The deploy-form network with the plan's channel surgery applied (as every execution sees it)."""
    plan = QuantPlan(model=ModelRef("srresnet", "tiny", 2), layers=(), structure=structure)
    return apply_plan(to_deploy_form(copy.deepcopy(model)).module, plan)


def test_dead_channels_removed_function_kept() -> None:
    model = tiny_srresnet_bn(DEAD)
    structure, report = prune_filters(model, CFG)
    assert [(g.producers, g.consumers, g.keep) for g in structure] == [
        ((f"body.{i}.conv1.weight",), (f"body.{i}.conv2.weight",), tuple(c for c in range(16) if c not in DEAD))
        for i in (0, 1)
    ]
    net = deployed(model, structure)
    block = net.body[0]
    assert block.conv1.weight.shape == (13, 16, 3, 3) and block.conv2.weight.shape == (16, 13, 3, 3)
    assert model.module.body[0].conv1.out_channels == 16  # the input model is untouched
    with torch.no_grad():
        assert torch.allclose(net(_x()), model.module(_x()), atol=1e-5)
    assert report["channels_removed"] == 6


def test_constant_channels_folded_exact_inside_border() -> None:
    model = tiny_srresnet_bn(dead=[], const=[2, 7])
    structure, report = prune_filters(model, CFG)
    assert report["blocks"][0]["constant"] == [2, 7] and "border" in report["note"]
    np.testing.assert_allclose(structure[0].constants, [0.7, 0.7], atol=1e-6)  # ReLU(beta) of gamma = 0
    feats = torch.randn(2, 16, 10, 11, generator=torch.Generator().manual_seed(2))
    dense = to_deploy_form(copy.deepcopy(model)).module.body[0]
    with torch.no_grad():
        ref, out = dense(feats), deployed(model, structure).body[0](feats)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    assert torch.allclose(out[inner], ref[inner], atol=1e-5)
    assert not torch.allclose(out, ref, atol=1e-5)  # the zero-padded border is where it is approximate


def test_max_fraction_and_at_least_one_channel() -> None:
    many = list(range(12))
    model = tiny_srresnet_bn(dead=many)
    with torch.no_grad():  # make the dead channels differ in how dead they are
        for i, c in enumerate(many):
            model.module.body[0].bn1.weight[c] = 1.0
            model.module.body[0].bn1.bias[c] = -3.0 - i
    structure, _ = prune_filters(model, SparsitySection(policy="bn_filter", bn_max_fraction=0.25))
    assert structure[0].keep == tuple(c for c in range(16) if c not in (8, 9, 10, 11))
    structure, _ = prune_filters(tiny_srresnet_bn(dead=list(range(16))), SparsitySection(bn_max_fraction=1.0))
    assert len(structure[0].keep) == 1


def test_no_bn_refused() -> None:
    folded = to_deploy_form(copy.deepcopy(tiny_srresnet_bn(DEAD)))
    with pytest.raises(RecipeError, match="needs conv-BatchNorm-ReLU-conv blocks"):
        prune_filters(folded, CFG)


def test_exported_pruned_onnx_is_smaller(tmp_path) -> None:
    model = tiny_srresnet_bn(dead=list(range(6)))
    structure, _ = prune_filters(model, CFG)
    dense = to_deploy_form(copy.deepcopy(model))
    pruned = replace(dense, module=deployed(model, structure))
    dense_path = export_onnx(dense, tmp_path / "dense.onnx")
    pruned_path = export_onnx(pruned, tmp_path / "pruned.onnx")
    inits = {i.name: list(i.dims) for i in onnx.load(str(pruned_path)).graph.initializer}
    assert inits["body.0.conv1.weight"] == [10, 16, 3, 3]
    assert pruned_path.stat().st_size < dense_path.stat().st_size
