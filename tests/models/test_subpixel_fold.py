"""models/subpixel_fold.py: the output conv folded through the last pixel shuffle computes the same image."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srdeploy.errors import BuildFolderError
from srdeploy.models.base import SRModel
from srdeploy.models.deploy_form import load_deploy_model, save_deploy_model, to_deploy_form
from srdeploy.models.edsr import EDSR
from srdeploy.models.srresnet import SRResNet
from srdeploy.models.subpixel_fold import fold_conv_through_shuffle, folded_kernel


@pytest.mark.parametrize("k", [1, 3, 5, 9])
@pytest.mark.parametrize("r", [2, 3])
def test_folded_conv_equals_conv_after_shuffle(k: int, r: int) -> None:
    torch.manual_seed(k * 10 + r)
    conv = nn.Conv2d(5, 3, k, padding=k // 2)
    y = torch.randn(2, 5 * r * r, 7, 6)
    folded = fold_conv_through_shuffle(conv, r)
    assert folded is not None and folded.out_channels == 3 * r * r and folded.in_channels == 5 * r * r
    assert folded.kernel_size[0] == folded_kernel(k, k // 2, r)[0]
    with torch.no_grad():
        torch.testing.assert_close(F.pixel_shuffle(folded(y), r), conv(F.pixel_shuffle(y, r)), atol=1e-5, rtol=0)


def test_a_9x9_conv_after_a_2x_shuffle_becomes_5x5() -> None:
    assert folded_kernel(9, 4, 2) == (5, 2)
    assert folded_kernel(3, 1, 2) == (3, 1)


def test_unusual_convs_are_left_alone() -> None:
    assert fold_conv_through_shuffle(nn.Conv2d(4, 3, 3, padding=1, stride=2), 2) is None
    assert fold_conv_through_shuffle(nn.Conv2d(4, 3, 3, padding=1, dilation=2), 2) is None
    assert fold_conv_through_shuffle(nn.Conv2d(4, 4, 3, padding=1, groups=2), 2) is None


def _model(net: nn.Module) -> SRModel:
    return SRModel(module=net.eval(), arch=net.arch, scale=net.scale, hparams=net.hparams, name="t")


NETS = {
    "edsr_x2": lambda: EDSR(scale=2, n_resblocks=1, n_feats=8),
    "edsr_x3": lambda: EDSR(scale=3, n_resblocks=1, n_feats=8),
    "edsr_x4": lambda: EDSR(scale=4, n_resblocks=1, n_feats=8),
    "srresnet_bn_x4": lambda: SRResNet(scale=4, n_resblocks=1, n_feats=8, bn=True),
    "srresnet_x2": lambda: SRResNet(scale=2, n_resblocks=1, n_feats=8, bn=False),
}


@pytest.mark.parametrize("name", sorted(NETS))
def test_deploy_form_is_folded_and_keeps_the_function(name: str) -> None:
    torch.manual_seed(0)
    net = NETS[name]()
    for m in net.modules():  # non-trivial PReLU slopes and BN statistics
        if isinstance(m, nn.PReLU):
            m.weight.data.uniform_(0.05, 0.4)
        if isinstance(m, nn.BatchNorm2d):
            m.running_var.data.uniform_(0.5, 2.0)
            m.running_mean.data.normal_(0, 0.3)
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        ref = net.eval()(x)
        deployed = to_deploy_form(_model(copy.deepcopy(net))).module
        out = deployed(x)
    assert isinstance(deployed.output_shuffle, nn.PixelShuffle)
    assert deployed.tail[1].out_channels == 3 * deployed.output_shuffle.upscale_factor**2
    shuffles = [sum(isinstance(m, nn.PixelShuffle) for m in t.tail.modules()) for t in (net, deployed)]
    assert shuffles[1] == shuffles[0] - 1  # the last shuffle moved to the end
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=0)


def test_build_folder_model_reloads_folded_and_old_folders_still_load(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = to_deploy_form(_model(SRResNet(scale=4, n_resblocks=1, n_feats=8, bn=True)))
    save_deploy_model(model, tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["deploy_folds"] == ["output_shuffle"]
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(load_deploy_model(tmp_path).module(x), model.module(x), atol=1e-6, rtol=0)
    # a folder written before the fold (no deploy_folds, unfolded weights) loads as it was written
    old = _model(SRResNet(scale=4, n_resblocks=1, n_feats=8, bn=True))
    old.module.fuse_for_deploy()
    save_deploy_model(old, tmp_path / "old")
    assert "deploy_folds" not in json.loads((tmp_path / "old" / "model.json").read_text())
    with torch.no_grad():
        torch.testing.assert_close(load_deploy_model(tmp_path / "old").module(x), old.module(x), atol=1e-6, rtol=0)
    # a model.json claiming folds its weights do not have is refused in one line
    old_meta = json.loads((tmp_path / "old" / "model.json").read_text())
    (tmp_path / "old" / "model.json").write_text(json.dumps({**old_meta, "deploy_folds": ["output_shuffle"]}))
    with pytest.raises(BuildFolderError):
        load_deploy_model(tmp_path / "old")
