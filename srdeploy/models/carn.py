"""CARN (Ahn et al., 2018) in the CARN-pytorch (nmhkahn) key layout.

Three cascading blocks of three residual blocks with 1x1 fusion convs, 64 features, ReLU; a
PixelShuffle upsampler (``upsample.up`` for single-scale, ``upsample.up{2,3,4}`` in the released
multi-scale checkpoint); mean shift in [0, 1] pixel range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from srdeploy.models.base import Architecture, SRNetwork, roles_by_prefix
from srdeploy.models.common import DIV2K_RGB_MEAN, ResidualAdd


class Shift(nn.Module):
    def __init__(self, sign: int) -> None:
        super().__init__()
        self.shifter = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.shifter.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.shifter.bias.copy_(sign * torch.tensor(DIV2K_RGB_MEAN))
        for p in self.shifter.parameters():
            p.requires_grad = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shifter(x)


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, c_out, kernel, 1, kernel // 2), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ResidualBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, 1, 1))
        self.add = ResidualAdd("block")
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.add(self.body(x), x))


class Cascade(nn.Module):
    """Three units with 1x1 fusions over the concatenation of everything before (CARN's Block)."""

    def __init__(self, c: int, unit: type[nn.Module]) -> None:
        super().__init__()
        self.b1, self.b2, self.b3 = unit(c), unit(c), unit(c)
        self.c1 = BasicBlock(c * 2, c)
        self.c2 = BasicBlock(c * 3, c)
        self.c3 = BasicBlock(c * 4, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1 = torch.cat([x, self.b1(x)], 1)
        o1 = self.c1(c1)
        c2 = torch.cat([c1, self.b2(o1)], 1)
        o2 = self.c2(c2)
        c3 = torch.cat([c2, self.b3(o2)], 1)
        return self.c3(c3)


class Upsample(nn.Module):
    def __init__(self, c: int, scale: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if scale == 3:
            layers += [nn.Conv2d(c, 9 * c, 3, 1, 1), nn.ReLU(inplace=True), nn.PixelShuffle(3)]
        elif scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(c, 4 * c, 3, 1, 1), nn.ReLU(inplace=True), nn.PixelShuffle(2)]
        else:
            raise ValueError(f"CARN supports scales 2, 3, 4, not {scale}")
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UpsampleBlock(nn.Module):
    def __init__(self, c: int, scale: int, multi_scale: bool) -> None:
        super().__init__()
        self.scale = scale
        if multi_scale:
            self.up2, self.up3, self.up4 = Upsample(c, 2), Upsample(c, 3), Upsample(c, 4)
        else:
            self.up = Upsample(c, scale)
        self.multi_scale = multi_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.multi_scale:
            return getattr(self, f"up{self.scale}")(x)
        return self.up(x)


class CARN(SRNetwork):
    arch = "carn"

    def __init__(self, scale: int = 4, n_feats: int = 64, multi_scale: bool = False) -> None:
        super().__init__()
        self.scale = scale
        self.hparams = dict(scale=scale, n_feats=n_feats, multi_scale=multi_scale)
        self.sub_mean = Shift(-1)
        self.add_mean = Shift(1)
        self.entry = nn.Conv2d(3, n_feats, 3, 1, 1)
        self.b1 = Cascade(n_feats, ResidualBlock)
        self.b2 = Cascade(n_feats, ResidualBlock)
        self.b3 = Cascade(n_feats, ResidualBlock)
        self.c1 = BasicBlock(n_feats * 2, n_feats)
        self.c2 = BasicBlock(n_feats * 3, n_feats)
        self.c3 = BasicBlock(n_feats * 4, n_feats)
        self.upsample = UpsampleBlock(n_feats, scale, multi_scale)
        self.exit = nn.Conv2d(n_feats, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.entry(self.sub_mean(x))
        c1 = torch.cat([x, self.b1(x)], 1)
        o1 = self.c1(c1)
        c2 = torch.cat([c1, self.b2(o1)], 1)
        o2 = self.c2(c2)
        c3 = torch.cat([c2, self.b3(o2)], 1)
        o3 = self.c3(c3)
        return self.add_mean(self.exit(self.upsample(o3)))

    def layer_roles(self) -> dict[str, str]:
        rules = (
            ("sub_mean", "fixed"),
            ("add_mean", "fixed"),
            ("entry", "head"),
            ("exit", "tail"),
            ("upsample", "upsampler"),
        )
        return roles_by_prefix(self, rules)


def detect(sd: Mapping[str, Any]) -> dict[str, Any] | None:
    if not {"entry.weight", "b1.b1.body.0.weight", "exit.weight"} <= sd.keys():
        return None
    n_feats = int(sd["entry.weight"].shape[0])
    if "upsample.up.body.0.weight" in sd:
        stages = sum(1 for i in range(0, 12, 3) if f"upsample.up.body.{i}.weight" in sd)
        ratio = int(sd["upsample.up.body.0.weight"].shape[0]) // n_feats
        scale = 3 if ratio == 9 else 2**stages
        return dict(scale=scale, n_feats=n_feats, multi_scale=False)
    if "upsample.up2.body.0.weight" in sd:
        # The released checkpoint holds x2, x3 and x4 upsamplers; x4 unless the recipe says otherwise.
        return dict(scale=4, n_feats=n_feats, multi_scale=True)
    return None


ARCHITECTURE = Architecture(
    name="carn",
    summary="CARN (CARN-pytorch layout: entry, b{1,2,3}.b{1,2,3}.body.{0,2}, c*, upsample.up*, exit)",
    detect=detect,
    build=CARN,
    hparam_names=("scale", "n_feats", "multi_scale"),
)
