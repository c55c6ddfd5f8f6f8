"""Building blocks shared by the built-in architectures.

Only torch is imported here so that tools/train_reference.py can run on a machine that has
nothing but PyTorch.
"""

from __future__ import annotations

import torch
from torch import nn

from srdeploy.models.base import SRNetwork, roles_by_prefix

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def conv3x3(c_in: int, c_out: int, bias: bool = True, kernel: int = 3) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=bias)


class MeanShift(nn.Conv2d):
    """Fixed 1x1 conv adding or subtracting the data-set RGB mean (EDSR-PyTorch layout).

    ``rgb_range`` is the pixel range the checkpoint was trained with (255 for EDSR-PyTorch).
    """

    def __init__(
        self,
        rgb_range: float,
        rgb_mean: tuple[float, float, float] = DIV2K_RGB_MEAN,
        sign: int = -1,
    ) -> None:
        super().__init__(3, 3, kernel_size=1)
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(rgb_mean))
        for p in self.parameters():
            p.requires_grad = False


class ResidualAdd(nn.Module):
    """``branch + skip`` as a module, so quantizers can attach to the skip input.

    TensorRT fuses a conv with a following residual Add when the Add's *other* input is
    quantized; srdeploy keys that quantizer by this module's path. ``role`` tells a block-level
    residual from the network-wide (global) one.
    """

    def __init__(self, role: str = "block") -> None:
        super().__init__()
        self.role = role

    def forward(self, branch: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return branch + skip

    def extra_repr(self) -> str:
        return f"role={self.role}"


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Return a new conv (with bias) equal to ``bn(conv(x))`` in eval mode."""
    std = torch.sqrt(bn.running_var + bn.eps)
    gamma = bn.weight if bn.affine else torch.ones_like(std)
    beta = bn.bias if bn.affine else torch.zeros_like(std)
    factor = gamma / std
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,  # type: ignore[arg-type]
        groups=conv.groups,
        bias=True,
    )
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    with torch.no_grad():
        fused.weight.copy_(conv.weight * factor.view(-1, 1, 1, 1))
        fused.bias.copy_((bias - bn.running_mean) * factor + beta)
    return fused


def fold_rgb_range(sub_mean: nn.Conv2d, add_mean: nn.Conv2d, rgb_range: float) -> None:
    """Make mean-shift layers take [0,1] input: x*r -> sub_mean, add_mean -> /r."""
    with torch.no_grad():
        sub_mean.weight.mul_(rgb_range)
        add_mean.weight.div_(rgb_range)
        add_mean.bias.div_(rgb_range)


def count_indexed(state_dict: dict, prefix: str, suffix: str) -> int:
    """Number of consecutive ``{prefix}{i}{suffix}`` keys starting at i = 0."""
    n = 0
    while f"{prefix}{n}{suffix}" in state_dict:
        n += 1
    return n


class MeanShiftResNet(SRNetwork):
    """EDSR-PyTorch's skeleton shared by EDSR and SRResNet: mean shift, head, body with a global
    residual, tail (upsampler + output conv), inverse mean shift, pixels in [0, rgb_range]."""

    ROLE_RULES = (
        ("sub_mean", "fixed"),
        ("add_mean", "fixed"),
        ("head", "head"),
        ("body", "body"),
        ("tail.0", "upsampler"),
        ("tail", "tail"),
    )
    rgb_range: float = 1.0
    sub_mean: nn.Module
    head: nn.Module
    body: nn.Module
    body_add: nn.Module
    tail: nn.Module
    add_mean: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rgb_range != 1:
            x = x * self.rgb_range
        x = self.head(self.sub_mean(x))
        res = self.body_add(self.body(x), x)
        out = self.add_mean(self.tail(res))
        shuffle = self._modules.get("output_shuffle")  # the deploy form's sub-pixel fold (models/subpixel_fold.py)
        if shuffle is not None:
            out = shuffle(out)
        if self.rgb_range != 1:
            out = out / self.rgb_range
        return out

    def layer_roles(self) -> dict[str, str]:
        return roles_by_prefix(self, self.ROLE_RULES)
