"""BN-based filter pruning of SRResNet-BN blocks: scores, exactness, constant folding, reload."""

from __future__ import annotations

import copy
import math

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from srdeploy.errors import BuildFolderError
from srdeploy.export import export_onnx
from srdeploy.models.base import SRModel
from srdeploy.models.deploy_form import load_deploy_model, save_deploy_model, to_deploy_form
from srdeploy.models.srresnet import SRResNet
from srdeploy.sparsity.api import prune_structure
from srdeploy.sparsity.bn_filter import apply_channel_pruning, channel_stats, prune_filters
from srdeploy.sparsity.config import SparsityConfig

DEAD = [1, 5, 9]
CFG = SparsityConfig(policy="bn_filter")


def tiny_srresnet_bn(dead: list[int] = DEAD, const: list[int] | None = None, seed: int = 0) -> SRModel:
    torch.manual_seed(seed)
    net = SRResNet(scale=2, n_resblocks=2, n_feats=16, bn=True)
    with torch.no_grad():
        for block in net.body[:2]:
            for bn in (block.bn1, block.bn2):
                bn.running_mean.normal_(0, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.normal_(0, 0.3)
            block.bn1.bias[dead] = -50.0  # always-zero after ReLU
            if const:
                block.bn1.weight[const] = 0.0  # exactly constant ReLU(beta)
                block.bn1.bias[const] = 0.7
            block.conv2.weight.mul_(0.2)
    net.eval()
    return SRModel(module=net, arch="srresnet", scale=2, hparams=net.hparams, name="tiny_srresnet_bn")


def _x(h: int = 12, w: int = 14) -> torch.Tensor:
    return torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(1))


def test_channel_stats_match_monte_carlo() -> None:
    bn = nn.BatchNorm2d(4)
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


def test_dead_channels_removed_function_kept() -> None:
    model = tiny_srresnet_bn()
    pruned, info = prune_filters(model, CFG)
    assert info["pruned_channels"] == {f"body.{i}.conv1": [c for c in range(16) if c not in DEAD] for i in (0, 1)}
    block = pruned.module.body[0]
    assert block.conv1.weight.shape == (13, 16, 3, 3) and block.conv2.weight.shape == (16, 13, 3, 3)
    assert block.bn1.num_features == 13
    assert model.module.body[0].conv1.out_channels == 16  # the input model is untouched
    assert set(dict(pruned.module.named_parameters())) == set(dict(model.module.named_parameters()))
    with torch.no_grad():
        assert torch.allclose(pruned.module(_x()), model.module(_x()), atol=1e-6)
    assert info["report"]["channels_removed"] == 6
    assert info["report"]["params_after"] < info["report"]["params_before"]


def test_reload_via_apply_channel_pruning_identical(tmp_path) -> None:
    pruned, info = prune_structure(tiny_srresnet_bn(), CFG)
    unfolded_shapes = {k: v.shape for k, v in pruned.module.state_dict().items()}
    deploy = to_deploy_form(pruned)
    save_deploy_model(deploy, tmp_path, structure={"pruned_channels": info["pruned_channels"]})
    again = load_deploy_model(tmp_path)
    with torch.no_grad():
        assert torch.equal(again.module(_x()), deploy.module(_x()))
    fresh = SRResNet(**pruned.hparams)  # surgery on a fresh, unfolded module gives the same shapes
    apply_channel_pruning(fresh, info["pruned_channels"])
    shapes = {k: v.shape for k, v in fresh.state_dict().items()}
    assert shapes == unfolded_shapes


def test_constant_channels_folded_into_bn2_exact_inside_border() -> None:
    model = tiny_srresnet_bn(dead=[], const=[2, 7])
    pruned, info = prune_filters(model, CFG)
    rows = info["report"]["blocks"]
    assert rows[0]["constant"] == [2, 7] and rows[0]["folded_into"] == "bn2.running_mean"
    assert "border" in info["report"]["note"]
    feats = torch.randn(2, 16, 10, 11, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref, out = model.module.body[0](feats), pruned.module.body[0](feats)
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
    _, info = prune_filters(model, SparsityConfig(policy="bn_filter", bn_max_fraction=0.25))
    assert info["pruned_channels"]["body.0.conv1"] == [c for c in range(16) if c not in (8, 9, 10, 11)]
    _, info = prune_filters(tiny_srresnet_bn(dead=list(range(16))), SparsityConfig(bn_max_fraction=1.0))
    assert len(info["pruned_channels"]["body.0.conv1"]) == 1


def test_no_bn_nothing_to_prune_and_bad_records() -> None:
    folded = to_deploy_form(copy.deepcopy(tiny_srresnet_bn()))
    _same, info = prune_filters(folded, CFG)
    assert info["pruned_channels"] == {} and "nothing pruned" in info["report"]["note"]
    net = SRResNet(scale=2, n_resblocks=2, n_feats=16, bn=True)
    with pytest.raises(BuildFolderError):
        apply_channel_pruning(net, {"body.0.conv2": [0, 1]})
    with pytest.raises(BuildFolderError):
        apply_channel_pruning(net, {"body.0.conv1": [3, 1]})


def test_exported_onnx_is_smaller(tmp_path) -> None:
    model = tiny_srresnet_bn(dead=list(range(6)))
    pruned, _ = prune_filters(model, CFG)
    dense_path = export_onnx(to_deploy_form(copy.deepcopy(model)), tmp_path / "dense.onnx")
    pruned_path = export_onnx(to_deploy_form(pruned), tmp_path / "pruned.onnx")
    inits = {i.name: list(i.dims) for i in onnx.load(str(pruned_path)).graph.initializer}
    assert inits["body.0.conv1.weight"] == [10, 16, 3, 3]
    assert pruned_path.stat().st_size < dense_path.stat().st_size
