"""Sparsity through the whole build: masks in the plan, pruned initializers, agreement, reload."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from srdeploy.models.loading import save_checkpoint
from srdeploy.models.srresnet import SRResNet
from srdeploy.pipeline import build
from srdeploy.quant.plan_io import load_plan
from srdeploy.recipe import recipe_from_dict
from srdeploy.sparsity.nm import satisfies
from srdeploy.validate.cli_support import validate_folder

REPO = Path(__file__).resolve().parents[1]


def recipe(ckpt: Path, hr: Path, sparsity: dict, **quant) -> object:
    return recipe_from_dict(
        {
            "name": "sp",
            "model": {"path": str(ckpt)},
            "calib": {"folder": str(hr), "patches": 8, "patch_size": 16},
            "quant": {"method": "mse", **quant},
            "sparsity": sparsity,
            "validate": {"dataset": str(hr), "reference": "fp32", "thresholds": {"min_agreement_db": 30}},
        }
    )


@pytest.fixture(scope="module")
def hr_folder(tmp_path_factory) -> Path:
    from PIL import Image

    folder = tmp_path_factory.mktemp("hr")
    rng = np.random.default_rng(0)
    for i in range(2):
        base = rng.random((48, 64, 3))
        Image.fromarray((255 * (0.5 * base + 0.5 * np.roll(base, 1, 1))).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def test_uniform_2of4_build(tmp_path: Path, hr_folder: Path) -> None:
    from srtest import tiny_edsr

    model = tiny_edsr(blocks=2, feats=16)
    ckpt = save_checkpoint(model.module, tmp_path / "m.pt")
    result = build(
        recipe(ckpt, hr_folder, {"policy": "uniform", "n": 2, "m": 4, "bias_correction": True}), tmp_path / "out"
    )
    assert result.passed, result.report["failures"]
    plan = load_plan(result.out_dir / "plan.json")
    body = [x.weight for x in plan.layers if x.role == "body"]
    assert set(plan.masks) == set(body)
    trt = onnx.load(str(result.out_dir / "trt" / "model.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in trt.graph.initializer}
    for w in body:
        assert satisfies(inits[w], 2, 4), w  # the int8 weights in the graph are 2:4
    meta = {p.key: p.value for p in trt.metadata_props}
    assert set(json.loads(meta["srdeploy.sparse_2of4_weights"])) == set(body)
    report = result.report
    assert report["sparsity"]["policy"] == "uniform"
    assert "No speed-up should be expected" in report["sparsity"]["eligibility"]
    assert report["lint"]["trt/model.onnx"]["errors"] == 0
    assert (result.out_dir / "sparsity.json").is_file()
    # the corrected biases are part of the plan, not of the fp32 reference
    fp32 = onnx.load(str(result.out_dir / "fp32.onnx"))
    fp32_bias = {i.name: numpy_helper.to_array(i) for i in fp32.graph.initializer}
    corrected = [k for k, m in plan.masks.items() if m.bias is not None]
    trained = model.module.state_dict()
    for w in corrected:
        b = w.replace("weight", "bias")
        assert np.allclose(fp32_bias[b], trained[b].numpy())
    again, _ = validate_folder(result.out_dir, str(hr_folder))
    assert again["verdict"] == "pass"


def test_bn_filter_build_shrinks_the_graph_and_reloads(tmp_path: Path, hr_folder: Path) -> None:
    torch.manual_seed(0)
    net = SRResNet(scale=2, n_resblocks=2, n_feats=16, bn=True).eval()
    with torch.no_grad():
        for block in (net.body[0], net.body[1]):
            block.bn1.bias[:6] = -10.0  # channels that are (almost) never active after ReLU
            block.bn1.weight[:6] = 0.1
    ckpt = save_checkpoint(net, tmp_path / "srr.pt")
    dense = build(recipe(ckpt, hr_folder, {"policy": "none"}), tmp_path / "dense", run_validation=False)
    pruned = build(recipe(ckpt, hr_folder, {"policy": "bn_filter", "bn_threshold": 0.01}), tmp_path / "pruned")
    assert pruned.passed, pruned.report["failures"]
    # fp32.onnx is the model as trained; the deployed graphs are the pruned network
    assert (pruned.out_dir / "fp32.onnx").read_bytes() == (dense.out_dir / "fp32.onnx").read_bytes()
    for profile in ("trt", "ort"):
        small, big = (b.out_dir / profile / "model.onnx" for b in (pruned, dense))
        assert small.stat().st_size < big.stat().st_size
    assert pruned.report["sparsity"]["structure"]["channels_removed"] == 12  # 6 per block
    plan = load_plan(pruned.out_dir / "plan.json")
    assert [len(g.keep) for g in plan.structure] == [10, 10]
    again, _ = validate_folder(pruned.out_dir, str(hr_folder))  # re-applies the plan's surgery
    assert again["verdict"] == "pass"


def _conv_shapes(path: Path) -> dict[str, list[int]]:
    return {i.name: list(i.dims) for i in onnx.load(str(path)).graph.initializer if i.name.endswith("conv1.weight")}


def test_bn_ratio_build_is_a_smaller_dense_network_and_fp32_stays_as_trained(tmp_path: Path, hr_folder: Path) -> None:
    torch.manual_seed(0)
    net = SRResNet(scale=2, n_resblocks=2, n_feats=16, bn=True).eval()
    with torch.no_grad():
        for block in (net.body[0], net.body[1]):
            block.bn1.weight.uniform_(0.2, 1.5)
            block.bn1.bias.normal_(0.0, 0.5)
    ckpt = save_checkpoint(net, tmp_path / "srr.pt")
    dense = build(recipe(ckpt, hr_folder, {"policy": "none"}), tmp_path / "dense")
    sparsity = {"policy": "bn_filter", "bn_ratio": 0.25, "recovery": True}
    pruned = build(recipe(ckpt, hr_folder, sparsity), tmp_path / "pruned")
    assert pruned.passed, pruned.report["failures"]
    assert (pruned.out_dir / "fp32.onnx").read_bytes() == (dense.out_dir / "fp32.onnx").read_bytes()
    plan = load_plan(pruned.out_dir / "plan.json")
    kept = {g.producers[0]: len(g.keep) for g in plan.structure}
    assert sum(kept.values()) == 24 and all(g.consumer_weight is not None for g in plan.structure)
    for profile in ("trt", "ort"):
        shapes = _conv_shapes(pruned.out_dir / profile / "model.onnx")
        assert {k: v[0] for k, v in shapes.items() if k in kept} == kept
        inits = {
            i.name: list(i.dims) for i in onnx.load(str(pruned.out_dir / profile / "model.onnx")).graph.initializer
        }
        assert inits["body.0.conv2.weight"] == [16, kept["body.0.conv1.weight"], 3, 3]
    size = pruned.report["sparsity"]["structure"]["size"]
    assert size["macs_per_lr_pixel_after"] < size["macs_per_lr_pixel_before"]
    assert size["params_after"] < size["params_before"]
    # the fp32 execution is the model as trained: the deployed drop includes the pruning loss
    vs_fp32 = {
        name: {s["execution"]: s["psnr_vs_fp32"] for s in b.report["summary"]}
        for name, b in (("dense", dense), ("pruned", pruned))
    }
    for execution, value in vs_fp32["pruned"].items():
        if execution != "fp32":
            assert value < vs_fp32["dense"][execution] - 3.0, (execution, vs_fp32)
    again, _ = validate_folder(pruned.out_dir, str(hr_folder))  # the plan's re-fitted consumers reload
    assert again["verdict"] == "pass"
