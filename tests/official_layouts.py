"""State dicts in the released key layouts of ESRGAN / Real-ESRGAN, and reference forwards.

Names and shapes follow the upstream definitions (BasicSR basicsr/archs/rrdbnet_arch.py,
Real-ESRGAN realesrgan/archs/srvgg_arch.py, ESRGAN architecture.py + block.py and
RRDBNet_arch.py), written out here independently of srdeploy's modules so the tests can
check that srdeploy maps and computes them as upstream does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Shapes = dict[str, tuple[int, ...]]


def conv_shapes(name: str, c_out: int, c_in: int) -> Shapes:
    return {f"{name}.weight": (c_out, c_in, 3, 3), f"{name}.bias": (c_out,)}


def rdb_shapes(prefix: str, nf: int, gc: int, conv_suffix: str = "") -> Shapes:
    """conv1..4: nf + (k-1)*gc -> gc; conv5: nf + 4*gc -> nf (ResidualDenseBlock)."""
    shapes: Shapes = {}
    for k in range(1, 6):
        c_out = gc if k < 5 else nf
        shapes |= conv_shapes(f"{prefix}.conv{k}{conv_suffix}", c_out, nf + (k - 1) * gc)
    return shapes


def basicsr_rrdbnet_shapes(num_block: int, nf: int = 64, gc: int = 32, in_ch: int = 3, n_up: int = 2) -> Shapes:
    shapes = conv_shapes("conv_first", nf, in_ch)
    for b in range(num_block):
        for r in (1, 2, 3):
            shapes |= rdb_shapes(f"body.{b}.rdb{r}", nf, gc)
    for name in ["conv_body", *[f"conv_up{i}" for i in range(1, n_up + 1)], "conv_hr"]:
        shapes |= conv_shapes(name, nf, nf)
    return shapes | conv_shapes("conv_last", 3, nf)


def esrgan_rrdbnet_arch_shapes(num_block: int, nf: int = 64, gc: int = 32) -> Shapes:
    """ESRGAN's RRDBNet_arch.py (RRDB_ESRGAN_x4.pth after transer_RRDB_models.py)."""
    shapes = conv_shapes("conv_first", nf, 3)
    for b in range(num_block):
        for r in (1, 2, 3):
            shapes |= rdb_shapes(f"RRDB_trunk.{b}.RDB{r}", nf, gc)
    for name in ("trunk_conv", "upconv1", "upconv2", "HRconv"):
        shapes |= conv_shapes(name, nf, nf)
    return shapes | conv_shapes("conv_last", 3, nf)


def compact_shapes(num_conv: int, nf: int = 64, scale: int = 4, prelu: bool = True) -> Shapes:
    """SRVGGNetCompact: body.0 conv, then (activation, conv) pairs; PReLU(num_parameters=nf)."""
    shapes = conv_shapes("body.0", nf, 3)
    for i in range(num_conv + 1):
        if prelu:
            shapes[f"body.{2 * i + 1}.weight"] = (nf,)
        c_out = nf if i < num_conv else 3 * scale * scale
        shapes |= conv_shapes(f"body.{2 * i + 2}", c_out, nf)
    return shapes


def random_state(shapes: Shapes, seed: int = 0, std: float = 0.05) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) * std for k, s in shapes.items()}


# -- the original ESRGAN module tree (architecture.py/block.py), rebuilt so its state_dict()
# produces the model.N.* names by nesting, independently of srdeploy's key mapping.


class _Shortcut(nn.Module):
    def __init__(self, sub: nn.Module) -> None:
        super().__init__()
        self.sub = sub

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sub(x)


class _OldRDB(nn.Module):
    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        for k in range(1, 6):
            conv = nn.Conv2d(nf + (k - 1) * gc, gc if k < 5 else nf, 3, 1, 1)
            # conv_block: Sequential(conv, act) for conv1-4, Sequential(conv) for conv5
            layers = [conv, nn.LeakyReLU(0.2)] if k < 5 else [conv]
            setattr(self, f"conv{k}", nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for k in range(1, 5):
            feats.append(getattr(self, f"conv{k}")(torch.cat(feats, 1)))
        return self.conv5(torch.cat(feats, 1)) * 0.2 + x


class _OldRRDB(nn.Module):
    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.RDB1, self.RDB2, self.RDB3 = _OldRDB(nf, gc), _OldRDB(nf, gc), _OldRDB(nf, gc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.RDB3(self.RDB2(self.RDB1(x))) * 0.2 + x


class OldESRGAN(nn.Module):
    """RRDB_Net(in_nc=3, out_nc=3, nf, nb, upscale=2**n_up, upsample_mode='upconv')."""

    def __init__(self, nf: int, nb: int, gc: int = 32, n_up: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, nf, 3, 1, 1)]
        layers.append(_Shortcut(nn.Sequential(*[_OldRRDB(nf, gc) for _ in range(nb)], nn.Conv2d(nf, nf, 3, 1, 1))))
        for _ in range(n_up):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(nf, nf, 3, 1, 1), nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(nf, nf, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(nf, 3, 3, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# -- reference forwards over BasicSR / Real-ESRGAN names


def _conv(sd: dict[str, torch.Tensor], name: str, x: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)


def basicsr_pixel_unshuffle(x: torch.Tensor, s: int) -> torch.Tensor:
    """BasicSR arch_util.pixel_unshuffle: (b, c, h*s, w*s) -> (b, c*s*s, h, w), channel c*s*s + i*s + j."""
    b, c, hh, hw = x.shape
    return x.view(b, c, hh // s, s, hw // s, s).permute(0, 1, 3, 5, 2, 4).reshape(b, c * s * s, hh // s, hw // s)


def reference_rrdbnet(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """BasicSR RRDBNet.forward for inputs whose size the unshuffle factor divides."""
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    factor = {3: 1, 12: 2, 48: 4}[sd["conv_first.weight"].shape[1]]
    feat = _conv(sd, "conv_first", basicsr_pixel_unshuffle(x, factor) if factor > 1 else x)
    trunk = feat
    b = 0
    while f"body.{b}.rdb1.conv1.weight" in sd:
        y = trunk
        for r in (1, 2, 3):
            feats = [y]
            for k in range(1, 5):
                feats.append(lrelu(_conv(sd, f"body.{b}.rdb{r}.conv{k}", torch.cat(feats, 1))))
            y = _conv(sd, f"body.{b}.rdb{r}.conv5", torch.cat(feats, 1)) * 0.2 + y
        trunk = y * 0.2 + trunk
        b += 1
    feat = feat + _conv(sd, "conv_body", trunk)
    k = 1
    while f"conv_up{k}.weight" in sd:
        feat = lrelu(_conv(sd, f"conv_up{k}", F.interpolate(feat, scale_factor=2, mode="nearest")))
        k += 1
    return _conv(sd, "conv_last", lrelu(_conv(sd, "conv_hr", feat)))


def reference_compact(sd: dict[str, torch.Tensor], x: torch.Tensor, act: str = "prelu") -> torch.Tensor:
    """SRVGGNetCompact.forward: body convs and activations, PixelShuffle, + nearest-upsampled input."""
    last = max(int(k.split(".")[1]) for k in sd)
    out = x
    for i in range(0, last + 1, 2):
        out = _conv(sd, f"body.{i}", out)
        if i < last:
            if act == "prelu":
                out = F.prelu(out, sd[f"body.{i + 1}.weight"])
            else:
                out = F.leaky_relu(out, 0.1) if act == "leakyrelu" else out.relu()
    scale = round((sd[f"body.{last}.weight"].shape[0] // 3) ** 0.5)
    return F.pixel_shuffle(out, scale) + F.interpolate(x, scale_factor=scale, mode="nearest")
