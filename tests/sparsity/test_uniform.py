"""Uniform N:M policy, the config, and the choose_masks entry point (incl. bias correction)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from srtest import patches, tiny_edsr

from srdeploy.calib.layers import layer_infos
from srdeploy.quant.apply import with_masks
from srdeploy.recipe import SparsitySection
from srdeploy.sparsity.api import choose_masks, choose_structure
from srdeploy.sparsity.common import conv_order
from srdeploy.sparsity.nm import satisfies
from srdeploy.sparsity.policies import POLICIES
from srdeploy.sparsity.uniform import uniform_masks


def _setup(feats: int = 8, blocks: int = 2):
    model = tiny_edsr(feats=feats, blocks=blocks)
    return model, layer_infos(model, conv_order(model.module))


@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (3, 4), (1, 2), (2, 8)])
def test_body_convs_only_and_patterns_hold(n: int, m: int) -> None:
    model, layers = _setup()
    masks, skipped = uniform_masks(model, layers, n, m, ("body",))
    body = {x.weight for x in layers if x.role == "body"}
    assert set(masks) == body
    params = dict(model.module.named_parameters())
    for name, mask in masks.items():
        assert (mask.n, mask.m) == (n, m)
        assert satisfies(params[name].detach().numpy() * mask.keep, n, m)
    roles = {x.weight: x.role for x in layers}
    assert {roles[w] for w in skipped} == {"head", "upsampler", "tail", "fixed"}
    assert all(skipped[w] for w in skipped)


def test_layers_with_c_not_multiple_of_m_are_skipped_with_reason() -> None:
    model, layers = _setup(feats=6)
    masks, skipped = uniform_masks(model, layers, 2, 4, ("body",))
    assert masks == {}
    body = [x.weight for x in layers if x.role == "body"]
    assert all("C=6 not a multiple of M=4" in skipped[w] for w in body)


def test_more_roles_and_dense_pattern() -> None:
    model, layers = _setup()
    masks, _ = uniform_masks(model, layers, 2, 4, ("body", "upsampler"))
    assert "tail.0.0.weight" in masks
    assert "head.0.weight" not in masks  # C=3 (RGB) is never a multiple of 4
    masks, skipped = uniform_masks(model, layers, 4, 4, ("body",))
    assert masks == {} and "is dense" in skipped["body.0.body.0.weight"]


def test_config_validation() -> None:
    cfg = SparsitySection(policy="sls", candidates=((2, 4), (1, 4)), mac_budget=0.3)
    assert cfg.policy == "sls" and cfg.mac_budget == 0.3
    assert cfg.sls_options == ((1, 1), (2, 4), (1, 4))
    assert tuple(POLICIES) == ("none", "uniform", "sls", "bn_filter", "l1_filter")
    for bad in (
        dict(policy="magic"),
        dict(n=5, m=4),
        dict(candidates=((0, 4),)),
        dict(candidates=()),
        dict(mac_budget=0.0),
        dict(include_roles=("fixed",)),
        dict(bn_threshold=1.0),
        dict(bn_max_fraction=0.0),
    ):
        with pytest.raises(ValidationError):
            SparsitySection(**bad)  # type: ignore[arg-type]


def test_choose_masks_report_and_bias_correction() -> None:
    torch.manual_seed(0)
    model, layers = _setup(feats=16, blocks=3)
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    cfg = SparsitySection(policy="uniform", sensitivity_patches=8, refit=False)
    masks, report = choose_masks(model, layers, patches(16, 16), cfg, seed=0)
    for k, v in model.module.state_dict().items():  # choose_masks does not modify the model
        assert torch.equal(v, before[k])
    json.dumps(report)  # plain data
    assert report["macs"]["roles_fraction"] == pytest.approx(0.5)
    rows = {r["weight"]: r for r in report["layers"]}
    assert rows["body.0.body.0.weight"]["pattern"] == "2:4" and rows["body.0.body.0.weight"]["sensitivity"] > 0
    assert rows["body.0.body.0.weight"]["macs_after"] == pytest.approx(rows["body.0.body.0.weight"]["macs_before"] / 2)
    assert rows["head.0.weight"]["pattern"] == "dense"
    bc = report["bias_correction"]
    assert bc["applied"] == (bc["mse_corrected"] < bc["mse_masked"])
    assert bc["applied"], "bias correction should help a 2:4-masked random EDSR"
    assert {w for w, m in masks.items() if m.fit == "bias_correction"} == set(masks)
    applied = dict(with_masks(model.module, masks).named_parameters())
    for w, m in masks.items():  # the plan's masks carry the corrected biases; the model keeps its own
        np.testing.assert_array_equal(applied[w.removesuffix("weight") + "bias"].detach().numpy(), m.bias)
        assert not np.array_equal(m.bias, before[w.removesuffix("weight") + "bias"].numpy())
    off_cfg = SparsitySection(policy="uniform", bias_correction=False, refit=False)
    off_masks, off = choose_masks(model, layers, patches(16, 16), off_cfg, 0)
    assert not off["bias_correction"]["applied"] and all(m.bias is None for m in off_masks.values())


def test_none_and_bn_filter_give_no_masks() -> None:
    model, layers = _setup()
    for policy in ("none", "bn_filter"):
        masks, report = choose_masks(model, layers, patches(4, 16), SparsitySection(policy=policy), 0)
        assert masks == {} and report["policy"] == policy
    structure, info = choose_structure(model, SparsitySection(policy="uniform"))
    assert structure == () and info["policy"] == "uniform"
