"""SRResNet (Ledig et al., 2017) in the EDSR-PyTorch / DAQ-pytorch key layout.

head.0 (9x9, no bias) + PReLU; N residual blocks conv1-bn1-ReLU-conv2-bn2 (+x); body conv + BN;
global residual; x2 PixelShuffle stages with PReLU; 9x9 output conv. ``bn=False`` builds the same
network without BatchNorm (convs then carry biases).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from srdeploy.models.base import Architecture
from srdeploy.models.common import (
    MeanShift,
    MeanShiftResNet,
    ResidualAdd,
    conv3x3,
    count_indexed,
    fold_batchnorm,
    fold_rgb_range,
)


class ResBlock(nn.Module):
    def __init__(self, n_feats: int, bn: bool) -> None:
        super().__init__()
        self.conv1 = conv3x3(n_feats, n_feats, bias=not bn)
        self.bn1: nn.Module = nn.BatchNorm2d(n_feats) if bn else nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(n_feats, n_feats, bias=not bn)
        self.bn2: nn.Module = nn.BatchNorm2d(n_feats) if bn else nn.Identity()
        self.add = ResidualAdd("block")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        return self.add(self.bn2(self.conv2(out)), x)

    def fuse_for_deploy(self) -> None:
        if isinstance(self.bn1, nn.BatchNorm2d):
            self.conv1 = fold_batchnorm(self.conv1, self.bn1)
            self.bn1 = nn.Identity()
        if isinstance(self.bn2, nn.BatchNorm2d):
            self.conv2 = fold_batchnorm(self.conv2, self.bn2)
            self.bn2 = nn.Identity()


class SRResNet(MeanShiftResNet):
    arch = "srresnet"

    def __init__(
        self, scale: int = 4, n_resblocks: int = 16, n_feats: int = 64, bn: bool = True, rgb_range: float = 255.0
    ) -> None:
        super().__init__()
        if scale & (scale - 1) != 0:
            raise ValueError(f"SRResNet supports power-of-two scales, not {scale}")
        self.scale = scale
        self.rgb_range = rgb_range
        self.hparams = dict(scale=scale, n_resblocks=n_resblocks, n_feats=n_feats, bn=bn, rgb_range=rgb_range)
        self.sub_mean = MeanShift(rgb_range, sign=-1)
        self.add_mean = MeanShift(rgb_range, sign=1)
        self.head = nn.Sequential(conv3x3(3, n_feats, bias=not bn, kernel=9), nn.PReLU())
        blocks: list[nn.Module] = [ResBlock(n_feats, bn) for _ in range(n_resblocks)]
        blocks.append(conv3x3(n_feats, n_feats, bias=not bn))
        blocks.append(nn.BatchNorm2d(n_feats) if bn else nn.Identity())
        self.body = nn.Sequential(*blocks)
        self.body_add = ResidualAdd("global")
        up: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            up += [conv3x3(n_feats, 4 * n_feats, bias=not bn), nn.PixelShuffle(2), nn.PReLU()]
        self.tail = nn.Sequential(nn.Sequential(*up), conv3x3(n_feats, 3, bias=not bn, kernel=9))

    def fuse_for_deploy(self) -> None:
        for block in self.body:
            if isinstance(block, ResBlock):
                block.fuse_for_deploy()
        last_conv, last_bn = len(self.body) - 2, len(self.body) - 1
        if isinstance(self.body[last_bn], nn.BatchNorm2d):
            self.body[last_conv] = fold_batchnorm(self.body[last_conv], self.body[last_bn])
            self.body[last_bn] = nn.Identity()
        if self.rgb_range != 1:
            fold_rgb_range(self.sub_mean, self.add_mean, self.rgb_range)
            self.rgb_range = 1.0


def detect(sd: Mapping[str, Any]) -> dict[str, Any] | None:
    if not {"head.0.weight", "body.0.conv1.weight", "body.0.conv2.weight"} <= sd.keys():
        return None
    n_feats = int(sd["head.0.weight"].shape[0])
    n_resblocks = count_indexed(sd, "body.", ".conv1.weight")
    bn = "body.0.bn1.weight" in sd
    stages = sum(1 for i in range(0, 12, 3) if f"tail.0.{i}.weight" in sd)
    rgb_range = 255.0
    if "sub_mean.bias" in sd:
        rgb_range = float(round(-float(sd["sub_mean.bias"][0]) / 0.4488, 3))
    return dict(scale=2**stages, n_resblocks=n_resblocks, n_feats=n_feats, bn=bn, rgb_range=rgb_range)


ARCHITECTURE = Architecture(
    name="srresnet",
    summary="SRResNet with or without BatchNorm (EDSR-PyTorch/DAQ layout: head.0, body.N.conv{1,2}, bn{1,2})",
    detect=detect,
    build=SRResNet,
    hparam_names=("scale", "n_resblocks", "n_feats", "bn", "rgb_range"),
)
