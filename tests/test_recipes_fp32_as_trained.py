"""For every bundled recipe (DAQ equalization and BN filter pruning included): fp32.onnx is the checkpoint as
trained, run in PyTorch, to float tolerance; what the recipe changes lives in the plan and the deployed graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from srtest import REPO

from srdeploy.models.edsr import EDSR
from srdeploy.models.loading import load_model, save_checkpoint
from srdeploy.models.srresnet import SRResNet
from srdeploy.pipeline import build
from srdeploy.recipe import load_recipe

RECIPES = sorted(p.name for p in (REPO / "recipes").glob("*.yaml"))


def checkpoint(tmp: Path, arch: str) -> Path:
    torch.manual_seed(0)
    if arch == "srresnet":
        net = SRResNet(scale=4, n_resblocks=2, n_feats=16, bn=True)
        with torch.no_grad():
            for block in net.body[:2]:
                block.bn1.bias[:4] = -8.0  # a few (almost) dead channels, so BN filter pruning removes something
                block.bn1.running_var.uniform_(0.5, 2.0)
    else:
        net = EDSR(scale=4, n_resblocks=2, n_feats=16)
    return save_checkpoint(net.eval(), tmp / f"{arch}.pt")


@pytest.mark.slow
@pytest.mark.parametrize("name", RECIPES)
def test_fp32_onnx_is_the_model_as_trained(name: str, tmp_path: Path) -> None:
    bundled = load_recipe(REPO / "recipes" / name)
    arch = "srresnet" if "srresnet" in (bundled.model.name or "") else "edsr"
    ckpt = checkpoint(tmp_path, arch)
    overrides = [
        "model.name=null",
        f"model.path={ckpt}",
        "calib.patches=8",
        "calib.patch_size=16",
        "quant.refine.steps=2",
        "quant.refine.patch_size=16",
        "quant.refine.patches=8",
        "sparsity.sensitivity_patches=2",
        "tensorrt.enabled=false",
    ]
    result = build(load_recipe(REPO / "recipes" / name, overrides), tmp_path / "out", run_validation=False)
    x = np.random.default_rng(1).random((1, 3, 12, 15)).astype(np.float32)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(result.out_dir / "fp32.onnx"), opts, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x})[0]
    with torch.no_grad():
        want = load_model(ckpt).module(torch.from_numpy(x)).numpy()  # as loaded: BatchNorm not even folded
    np.testing.assert_allclose(got, want, atol=2e-4, rtol=1e-4)
    # the recipe's own transformation really happened (so the check above covered it)
    if bundled.sparsity.policy == "bn_filter":
        assert result.plan.structure
    if bundled.quant.equalize_enabled:
        assert result.plan.equalization
    if bundled.sparsity.policy in ("uniform", "sls"):
        assert result.plan.masks
