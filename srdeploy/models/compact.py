"""SRVGGNetCompact (Real-ESRGAN's "Compact") in Real-ESRGAN's key layout.

``body`` is one ModuleList: conv 3->num_feat, activation, ``num_conv`` x (conv num_feat->num_feat,
activation), conv num_feat->3*s*s; then PixelShuffle(s), plus the nearest-upsampled input (the
network learns the residual). Convs sit at even indices, activations at odd ones. Released files:
realesr-animevideov3 (num_conv 16) and realesr-general-x4v3 / realesr-general-wdn-x4v3
(num_conv 32), all 64 features, x4, PReLU with one slope per channel.

Activation detection: PReLU slopes are parameters (``body.1.weight``, ``body.3.weight``, ... of
shape (num_feat,)). LeakyReLU(0.1) and ReLU leave no keys and cannot be told apart; such files
load with ``act_type="relu"`` unless ``act_type`` is given (``load_model(path, act_type="leakyrelu")``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srdeploy.errors import ModelError
from srdeploy.models.base import Architecture, SRNetwork
from srdeploy.models.common import ResidualAdd, conv3x3

ACT_TYPES = ("prelu", "leakyrelu", "relu")
KEYLESS_ACT_DEFAULT = "relu"
_BODY_KEY = re.compile(r"body\.(\d+)\.(weight|bias)")


def activation(act_type: str, num_feat: int) -> nn.Module:
    if act_type == "prelu":
        return nn.PReLU(num_parameters=num_feat)
    if act_type == "leakyrelu":
        return nn.LeakyReLU(0.1)
    if act_type == "relu":
        return nn.ReLU()
    raise ModelError(f"unknown Compact activation '{act_type}'", f"use one of {', '.join(ACT_TYPES)}")


class SRVGGNetCompact(SRNetwork):
    arch = "compact"

    def __init__(self, scale: int = 4, num_feat: int = 64, num_conv: int = 16, act_type: str = "prelu") -> None:
        super().__init__()
        if scale < 1:
            raise ModelError(f"Compact cannot be built for scale {scale}", "set model.scale to 1, 2, 3 or 4")
        self.scale = scale
        self.hparams = dict(scale=scale, num_feat=num_feat, num_conv=num_conv, act_type=act_type)
        layers: list[nn.Module] = [conv3x3(3, num_feat), activation(act_type, num_feat)]
        for _ in range(num_conv):
            layers += [conv3x3(num_feat, num_feat), activation(act_type, num_feat)]
        layers.append(conv3x3(num_feat, 3 * scale * scale))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(scale)
        self.base_add = ResidualAdd("global")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        base = F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return self.base_add(self.upsampler(out), base)

    def layer_roles(self) -> dict[str, str]:
        convs = [f"body.{i}.weight" for i, m in enumerate(self.body) if isinstance(m, nn.Conv2d)]
        roles = dict.fromkeys(convs, "body")
        roles[convs[0]] = "head"
        roles[convs[-1]] = "tail"
        return roles

    def fuse_for_deploy(self) -> None:
        """Nothing to fold: no normalisation or constant scaling, and PReLU has per-channel slopes."""


def _body_tensors(sd: Mapping[str, Any]) -> dict[int, dict[str, Any]] | None:
    body: dict[int, dict[str, Any]] = {}
    for key, value in sd.items():
        m = _BODY_KEY.fullmatch(key)
        if m is None:
            return None
        body.setdefault(int(m[1]), {})[m[2]] = value
    return body


def detect(sd: Mapping[str, Any]) -> dict[str, Any] | None:
    body = _body_tensors(sd)
    if not body or 0 not in body or getattr(body[0].get("weight"), "ndim", 0) != 4:
        return None
    convs = sorted(i for i, t in body.items() if getattr(t.get("weight"), "ndim", 0) == 4)
    slopes = sorted(i for i, t in body.items() if getattr(t.get("weight"), "ndim", 0) == 1)
    last = convs[-1]
    if convs != list(range(0, last + 1, 2)) or last < 2:
        raise ModelError(
            f"Compact checkpoint has convs at body indices {convs}",
            "expected body.0, body.2, ..., body.2(num_conv+1): a conv at every even index",
        )
    if slopes and slopes != list(range(1, last, 2)):
        raise ModelError(
            f"Compact checkpoint has PReLU slopes at body indices {slopes}, expected {list(range(1, last, 2))}",
            "the file is truncated or edited: a prelu Compact has one slope vector after every conv but the last",
        )
    first, final = body[0]["weight"], body[last]["weight"]
    num_feat, out_ch = int(first.shape[0]), int(final.shape[0])
    scale = math.isqrt(out_ch // 3)
    if int(first.shape[1]) != 3 or out_ch != 3 * scale * scale:
        raise ModelError(
            f"Compact checkpoint maps {int(first.shape[1])} input channels to {out_ch} before PixelShuffle",
            "srdeploy expects RGB: body.0 with 3 input channels, the last conv with 3*scale^2 outputs",
        )
    return dict(
        scale=scale,
        num_feat=num_feat,
        num_conv=last // 2 - 1,
        act_type="prelu" if slopes else KEYLESS_ACT_DEFAULT,
    )


ARCHITECTURE = Architecture(
    name="compact",
    summary="SRVGGNetCompact: Real-ESRGAN Compact (body.{0,2,..} convs, body.{1,3,..} PReLU, PixelShuffle, "
    "+ nearest-upsampled input)",
    detect=detect,
    build=SRVGGNetCompact,
    hparam_names=("scale", "num_feat", "num_conv", "act_type"),
)
