"""RRDBNet (ESRGAN, Wang et al. 2018; Real-ESRGAN, Wang et al. 2021) in BasicSR's key layout.

Layout: ``conv_first``; ``body.N`` residual-in-residual dense blocks ``rdb{1,2,3}.conv{1..5}``;
``conv_body`` with the global residual; ``conv_up{1,2}`` after nearest x2 upsampling each;
``conv_hr``; ``conv_last``; LeakyReLU(0.2). BasicSR's x2 (x1) variant pixel-unshuffles the input
by 2 (4) before ``conv_first`` and keeps the two x2 stages, so ``conv_first`` has 12 (48) input
channels. Released files: RealESRGAN_x4plus / RealESRNet_x4plus (23 blocks, 64 features, growth
32), RealESRGAN_x2plus (same, x2), RealESRGAN_x4plus_anime_6B (6 blocks). A third upsampling
stage (``conv_up3``, community x8 models) is accepted. The ESRGAN repository's key layouts are
converted on load (see ``esrgan_keys.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srdeploy.errors import ModelError
from srdeploy.models.base import Architecture, SRNetwork, roles_by_prefix
from srdeploy.models.common import ResidualAdd, conv3x3, count_indexed
from srdeploy.models.esrgan_keys import convert_esrgan_layout

RES_SCALE = 0.2  # ESRGAN's residual scaling inside every RDB and RRDB
UNSHUFFLE_BY_IN_CHANNELS = {3: 1, 12: 2, 48: 4}


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs, each seeing the concatenation of the block input and all earlier outputs."""

    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        for i in range(4):
            setattr(self, f"conv{i + 1}", conv3x3(num_feat + i * num_grow_ch, num_grow_ch))
        self.conv5 = conv3x3(num_feat + 4 * num_grow_ch, num_feat)
        self.lrelu = nn.LeakyReLU(0.2)
        self.add = ResidualAdd("block")
        # Folded into conv5 by fuse_for_deploy; 1.0 afterwards.
        self.res_scale = RES_SCALE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for i in range(1, 5):
            conv = getattr(self, f"conv{i}")
            feats.append(self.lrelu(conv(torch.cat(feats, 1))))
        out = self.conv5(torch.cat(feats, 1))
        if self.res_scale != 1:
            out = out * self.res_scale
        return self.add(out, x)

    def fuse_for_deploy(self) -> None:
        if self.res_scale == 1:
            return
        with torch.no_grad():
            self.conv5.weight.mul_(self.res_scale)
            self.conv5.bias.mul_(self.res_scale)
        self.res_scale = 1.0


class RRDB(nn.Module):
    """Three RDBs in sequence; their output, scaled by 0.2, is added to the block input.

    The outer 0.2 cannot be folded into a conv (it scales rdb3's own skip too), so it stays a Mul.
    """

    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.add = ResidualAdd("block")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.rdb3(self.rdb2(self.rdb1(x)))
        return self.add(out * RES_SCALE, x)


def default_upsample_stages(scale: int) -> int:
    return 3 if scale == 8 else 2


class RRDBNet(SRNetwork):
    arch = "rrdbnet"

    def __init__(
        self,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
        num_upsample: int | None = None,
    ) -> None:
        super().__init__()
        stages = default_upsample_stages(scale) if num_upsample is None else int(num_upsample)
        unshuffle = 2**stages // scale if scale > 0 else 0
        if scale < 1 or unshuffle not in (1, 2, 4) or unshuffle * scale != 2**stages:
            raise ModelError(
                f"RRDBNet cannot be built for scale {scale} with {stages} x2 upsampling stages",
                "BasicSR's RRDBNet supports scales 1, 2, 4 (and 8 with conv_up3); check model.scale",
            )
        self.scale = scale
        self.unshuffle = unshuffle
        self.upsample_names = tuple(f"conv_up{i + 1}" for i in range(stages))
        self.hparams = dict(
            scale=scale, num_feat=num_feat, num_block=num_block, num_grow_ch=num_grow_ch, num_upsample=stages
        )
        self.conv_first = conv3x3(3 * unshuffle * unshuffle, num_feat)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = conv3x3(num_feat, num_feat)
        self.body_add = ResidualAdd("global")
        for name in self.upsample_names:
            setattr(self, name, conv3x3(num_feat, num_feat))
        self.conv_hr = conv3x3(num_feat, num_feat)
        self.conv_last = conv3x3(num_feat, 3)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        feat = x
        if self.unshuffle > 1:
            # Real-ESRGAN's inference reflect-pads to a multiple of the unshuffle factor and crops the
            # output; doing it in the graph lets every size through (export, tiling, validation).
            u = self.unshuffle
            feat = F.pad(feat, (0, (u - width % u) % u, 0, (u - height % u) % u), mode="reflect")
            feat = F.pixel_unshuffle(feat, u)
        feat = self.conv_first(feat)
        feat = self.body_add(self.conv_body(self.body(feat)), feat)
        for name in self.upsample_names:
            feat = self.lrelu(getattr(self, name)(F.interpolate(feat, scale_factor=2, mode="nearest")))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        if self.unshuffle > 1:
            out = out[:, :, : height * self.scale, : width * self.scale]
        return out

    def layer_roles(self) -> dict[str, str]:
        rules = [("conv_first", "head"), ("conv_hr", "upsampler"), ("conv_last", "tail")]
        rules += [(name, "upsampler") for name in self.upsample_names]
        return roles_by_prefix(self, rules)

    def fuse_for_deploy(self) -> None:
        for m in self.modules():
            if isinstance(m, ResidualDenseBlock):
                m.fuse_for_deploy()


_BLOCK_KEY = re.compile(r"body\.(\d+)\.")


def _block_count(sd: Mapping[str, Any]) -> int:
    """Blocks body.0..body.N-1; a gap or stray block index is an error, not a smaller network."""
    indices = sorted({int(m.group(1)) for k in sd if (m := _BLOCK_KEY.match(k))})
    n = count_indexed(sd, "body.", ".rdb1.conv1.weight")
    if indices != list(range(n)):
        raise ModelError(
            f"RRDBNet checkpoint has RRDB blocks at body indices {_ranges(indices)}, but only body.0-{n - 1} "
            "are complete (rdb1.conv1 present)",
            "the file is truncated or edited; expected blocks body.0..body.N-1 with rdb1..rdb3 each",
        )
    return n


def _ranges(indices: list[int]) -> str:
    parts, start = [], None
    for i, v in enumerate(indices):
        if start is None:
            start = v
        if i + 1 == len(indices) or indices[i + 1] != v + 1:
            parts.append(f"{start}" if start == v else f"{start}-{v}")
            start = None
    return ", ".join(parts)


def detect(sd: Mapping[str, Any]) -> dict[str, Any] | None:
    sd = convert_esrgan_layout(sd) or sd
    if not {"conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight", "conv_last.weight"} <= sd.keys():
        return None
    in_ch = int(sd["conv_first.weight"].shape[1])
    out_ch = int(sd["conv_last.weight"].shape[0])
    if in_ch not in UNSHUFFLE_BY_IN_CHANNELS or out_ch != 3:
        raise ModelError(
            f"RRDBNet checkpoint maps {in_ch} input channels to {out_ch} output channels; srdeploy expects "
            "RGB: conv_first with 3 (x4/x8), 12 (x2) or 48 (x1) input channels and conv_last with 3 outputs",
            "grayscale or RGBA RRDBNet models are not supported",
        )
    found = sorted(k for k in sd if re.fullmatch(r"conv_up\d+\.weight", k))
    stages = 0
    while f"conv_up{stages + 1}.weight" in sd:
        stages += 1
    if not 1 <= stages <= 3 or len(found) != stages:
        raise ModelError(
            f"RRDBNet checkpoint has upsampling convs {found or 'none'}",
            "expected conv_up1, conv_up2 (BasicSR x4, or x2/x1 with pixel-unshuffle); conv_up1..3 for x8; "
            "conv_up1 alone for old ESRGAN x2 files",
        )
    unshuffle = UNSHUFFLE_BY_IN_CHANNELS[in_ch]
    if 2**stages < unshuffle:
        raise ModelError(
            f"RRDBNet checkpoint pixel-unshuffles by {unshuffle} ({in_ch} input channels) but has only {stages} "
            "upsampling stage(s)",
            "BasicSR's x1 variant (48 input channels) has conv_up1 and conv_up2",
        )
    scale = 2**stages // unshuffle
    return dict(
        scale=scale,
        num_feat=int(sd["conv_first.weight"].shape[0]),
        num_block=_block_count(sd),
        num_grow_ch=int(sd["body.0.rdb1.conv1.weight"].shape[0]),
        num_upsample=stages,
    )


ARCHITECTURE = Architecture(
    name="rrdbnet",
    summary="RRDBNet: ESRGAN / Real-ESRGAN (BasicSR layout: conv_first, body.N.rdb{1,2,3}.conv{1..5}, conv_body, "
    "conv_up*, conv_hr, conv_last; ESRGAN's model.N.* and RRDB_trunk layouts converted)",
    detect=detect,
    build=RRDBNet,
    hparam_names=("scale", "num_feat", "num_block", "num_grow_ch", "num_upsample"),
    convert=convert_esrgan_layout,
)
