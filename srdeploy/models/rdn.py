"""RDN (Zhang et al., 2018) in the EDSR-PyTorch key layout.

Configs: A = (D=20 blocks, C=6 convs, G=32), B = (16, 8, 64, the paper's); G0 = 64. The network
has no mean shift and expects pixels in [0, rgb_range] (255 for EDSR-PyTorch checkpoints).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from srdeploy.models.base import Architecture, SRNetwork
from srdeploy.models.common import ResidualAdd, conv3x3, count_indexed


class DenseConv(nn.Module):
    def __init__(self, c_in: int, growth: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(conv3x3(c_in, growth), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.conv(x)), 1)


class RDB(nn.Module):
    def __init__(self, g0: int, growth: int, n_convs: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(*[DenseConv(g0 + c * growth, growth) for c in range(n_convs)])
        self.LFF = nn.Conv2d(g0 + n_convs * growth, g0, 1)
        self.add = ResidualAdd("block")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.add(self.LFF(self.convs(x)), x)


class RDN(SRNetwork):
    arch = "rdn"

    def __init__(
        self,
        scale: int = 4,
        n_blocks: int = 16,
        n_convs: int = 8,
        growth: int = 64,
        g0: int = 64,
        rgb_range: float = 255.0,
    ) -> None:
        super().__init__()
        if scale not in (2, 3, 4):
            raise ValueError(f"RDN supports scales 2, 3, 4, not {scale}")
        self.scale = scale
        self.rgb_range = rgb_range
        self.hparams = dict(scale=scale, n_blocks=n_blocks, n_convs=n_convs, growth=growth, g0=g0, rgb_range=rgb_range)
        self.SFENet1 = conv3x3(3, g0)
        self.SFENet2 = conv3x3(g0, g0)
        self.RDBs = nn.ModuleList([RDB(g0, growth, n_convs) for _ in range(n_blocks)])
        self.GFF = nn.Sequential(nn.Conv2d(n_blocks * g0, g0, 1), conv3x3(g0, g0))
        self.global_add = ResidualAdd("global")
        if scale in (2, 3):
            self.UPNet = nn.Sequential(conv3x3(g0, growth * scale * scale), nn.PixelShuffle(scale), conv3x3(growth, 3))
        else:
            self.UPNet = nn.Sequential(
                conv3x3(g0, growth * 4),
                nn.PixelShuffle(2),
                conv3x3(growth, growth * 4),
                nn.PixelShuffle(2),
                conv3x3(growth, 3),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rgb_range != 1:
            x = x * self.rgb_range
        f1 = self.SFENet1(x)
        x = self.SFENet2(f1)
        outs = []
        for block in self.RDBs:
            x = block(x)
            outs.append(x)
        x = self.global_add(self.GFF(torch.cat(outs, 1)), f1)
        out = self.UPNet(x)
        if self.rgb_range != 1:
            out = out / self.rgb_range
        return out

    def layer_roles(self) -> dict[str, str]:
        roles: dict[str, str] = {}
        convs = [n for n, m in self.named_modules() if isinstance(m, nn.Conv2d)]
        for name in convs:
            key = f"{name}.weight"
            if name == "SFENet1":
                roles[key] = "head"
            elif name.startswith("UPNet"):
                roles[key] = "tail" if name == convs[-1] else "upsampler"
            else:
                roles[key] = "body"
        return roles

    def fuse_for_deploy(self) -> None:
        if self.rgb_range == 1:
            return
        # SFENet1(r*x) == (r*W1) x + b1, and UPNet(.)/r only rescales the last conv.
        with torch.no_grad():
            self.SFENet1.weight.mul_(self.rgb_range)
            last = self.UPNet[-1]
            last.weight.div_(self.rgb_range)
            last.bias.div_(self.rgb_range)
        self.rgb_range = 1.0


def detect(sd: Mapping[str, Any]) -> dict[str, Any] | None:
    if not {"SFENet1.weight", "SFENet2.weight", "RDBs.0.LFF.weight"} <= sd.keys():
        return None
    g0 = int(sd["SFENet1.weight"].shape[0])
    n_blocks = count_indexed(sd, "RDBs.", ".LFF.weight")
    n_convs = count_indexed(sd, "RDBs.0.convs.", ".conv.0.weight")
    growth = int(sd["RDBs.0.convs.0.conv.0.weight"].shape[0])
    first_up = int(sd["UPNet.0.weight"].shape[0])
    scale = 4 if "UPNet.4.weight" in sd else 3 if first_up == growth * 9 else 2
    return dict(scale=scale, n_blocks=n_blocks, n_convs=n_convs, growth=growth, g0=g0, rgb_range=255.0)


ARCHITECTURE = Architecture(
    name="rdn",
    summary="RDN (EDSR-PyTorch layout: SFENet1/2, RDBs.N.convs.M.conv.0, LFF, GFF, UPNet)",
    detect=detect,
    build=RDN,
    hparam_names=("scale", "n_blocks", "n_convs", "growth", "g0", "rgb_range"),
)
