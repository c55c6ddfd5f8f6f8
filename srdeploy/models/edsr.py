"""EDSR (Lim et al., 2017) in the EDSR-PyTorch key layout.

Published settings: baseline 16 blocks x 64 features (res_scale 1), full 32 x 256 (res_scale 0.1);
scales 2, 3, 4; RGB mean shift with rgb_range 255.
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
    fold_rgb_range,
)


class ResBlock(nn.Module):
    def __init__(self, n_feats: int, res_scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(n_feats, n_feats), nn.ReLU(inplace=True), conv3x3(n_feats, n_feats))
        self.res_scale = res_scale
        self.add = ResidualAdd("block")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.body(x)
        if self.res_scale != 1:
            res = res * self.res_scale
        return self.add(res, x)


def upsampler(scale: int, n_feats: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    if scale & (scale - 1) == 0:
        for _ in range(int(math.log2(scale))):
            layers += [conv3x3(n_feats, 4 * n_feats), nn.PixelShuffle(2)]
    elif scale == 3:
        layers += [conv3x3(n_feats, 9 * n_feats), nn.PixelShuffle(3)]
    else:
        raise ValueError(f"EDSR supports scales 2, 3, 4 (and powers of 2), not {scale}")
    return nn.Sequential(*layers)


class EDSR(MeanShiftResNet):
    arch = "edsr"

    def __init__(
        self,
        scale: int = 4,
        n_resblocks: int = 16,
        n_feats: int = 64,
        res_scale: float = 1.0,
        rgb_range: float = 255.0,
    ) -> None:
        super().__init__()
        self.scale = scale
        self.rgb_range = rgb_range
        self.hparams = dict(
            scale=scale, n_resblocks=n_resblocks, n_feats=n_feats, res_scale=res_scale, rgb_range=rgb_range
        )
        self.sub_mean = MeanShift(rgb_range, sign=-1)
        self.add_mean = MeanShift(rgb_range, sign=1)
        self.head = nn.Sequential(conv3x3(3, n_feats))
        blocks: list[nn.Module] = [ResBlock(n_feats, res_scale) for _ in range(n_resblocks)]
        blocks.append(conv3x3(n_feats, n_feats))
        self.body = nn.Sequential(*blocks)
        self.body_add = ResidualAdd("global")
        self.tail = nn.Sequential(upsampler(scale, n_feats), conv3x3(n_feats, 3))

    def fuse_for_deploy(self) -> None:
        with torch.no_grad():
            for block in self.body:
                if isinstance(block, ResBlock) and block.res_scale != 1:
                    last = block.body[2]
                    last.weight.mul_(block.res_scale)
                    last.bias.mul_(block.res_scale)
                    block.res_scale = 1.0
            if self.rgb_range != 1:
                fold_rgb_range(self.sub_mean, self.add_mean, self.rgb_range)
                self.rgb_range = 1.0


def detect(sd: Mapping[str, Any]) -> dict[str, Any] | None:
    if not {"head.0.weight", "body.0.body.0.weight", "body.0.body.2.weight"} <= sd.keys():
        return None
    if any(".bn1." in k or "conv1" in k for k in sd):
        return None
    n_feats = int(sd["head.0.weight"].shape[0])
    n_resblocks = count_indexed(sd, "body.", ".body.0.weight")
    first_up = sd.get("tail.0.0.weight")
    if first_up is None:
        return None
    ratio = int(first_up.shape[0]) // n_feats
    if ratio == 9:
        scale = 3
    else:
        stages = sum(1 for i in range(0, 8, 2) if f"tail.0.{i}.weight" in sd)
        scale = 2**stages
    rgb_range = 255.0
    if "sub_mean.bias" in sd:
        # bias = -rgb_range * mean / std, with the DIV2K red mean 0.4488 and std 1
        rgb_range = float(round(-float(sd["sub_mean.bias"][0]) / 0.4488, 3))
    res_scale = 0.1 if n_feats >= 256 else 1.0
    return dict(scale=scale, n_resblocks=n_resblocks, n_feats=n_feats, res_scale=res_scale, rgb_range=rgb_range)


ARCHITECTURE = Architecture(
    name="edsr",
    summary="EDSR / EDSR-baseline (EDSR-PyTorch layout: head.0, body.N.body.{0,2}, tail.0.*, tail.1)",
    detect=detect,
    build=EDSR,
    hparam_names=("scale", "n_resblocks", "n_feats", "res_scale", "rgb_range"),
)
