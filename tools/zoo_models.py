"""The architectures tools/bench_zoo.py deploys: the bundled trained models, the built-in Real-ESRGAN networks in
the shapes of the released checkpoints, and spandrel families at sizes of their published light variants.

Only the bundled models carry trained weights. The released Real-ESRGAN files and spandrel's pretrained models
cannot be downloaded on the machines this project runs on (no network), so those rows are random-initialised
networks of the released shapes (PyTorch's default initialisation; the built-in Real-ESRGAN networks' last conv
rescaled to an image-like output, see SIGNAL_NOTE): their export, graph rewrites, fusions and speed are those of
the real networks, while their INT8 fidelity is a proxy (trained weights have other ranges). Each spec says which
it is. Not part of the package API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class ZooSpec:
    key: str  # row label
    family: str  # "built-in" or "spandrel"
    weights: str  # "trained (bundled)" or "random init, <shape of>"
    conv_only: bool  # the >= 40 dB fidelity target applies to conv-only networks
    make: Callable[[Path], dict[str, Any]]  # folder -> the recipe's model section


def _bundled(name: str) -> Callable[[Path], dict[str, Any]]:
    return lambda _folder: {"name": name}


def _image_like(net: nn.Module, last: nn.Conv2d, mean: float, std: float, scale: int) -> nn.Module:
    """Rescale the last conv so that, on training-set LR crops, its output has this mean and spread: an untrained
    network's output is a near-constant image (std ~0.003) that INT8 reproduces after 8-bit rounding, which
    measures nothing. See SIGNAL_NOTE."""
    from srdeploy.data.sets import load_pairs

    lr = [p.lr[:64, :64] for p in load_pairs("train", scale, 4)]
    x = torch.from_numpy(np.stack(lr).transpose(0, 3, 1, 2).copy()).float()
    seen: list[torch.Tensor] = []
    hook = last.register_forward_hook(lambda _m, _i, y: seen.append(y.detach()))
    with torch.no_grad():
        net(x)
    hook.remove()
    k = std / float(seen[0].std())
    with torch.no_grad():
        last.weight.mul_(k)
        last.bias.sub_(float(seen[0].mean())).mul_(k).add_(mean)
    return net


def _save(net: nn.Module, folder: Path, name: str, wrapper: str | None = None) -> Path:
    path = folder / f"{name}.pth"
    sd = {k: v.detach().clone() for k, v in net.state_dict().items()}
    torch.save({wrapper: sd} if wrapper else sd, path)
    return path


def _rrdb(name: str, scale: int, blocks: int) -> Callable[[Path], dict[str, Any]]:
    def make(folder: Path) -> dict[str, Any]:
        from srdeploy.models.rrdbnet import RRDBNet

        torch.manual_seed(0)
        net = RRDBNet(scale=scale, num_feat=64, num_block=blocks, num_grow_ch=32)  # see RANDOM_RRDB_NOTE
        net = _image_like(net.eval(), net.conv_last, mean=0.45, std=0.25, scale=scale)
        return {"path": str(_save(net, folder, name, "params_ema")), "arch": "rrdbnet"}

    return make


def _compact(name: str, num_conv: int) -> Callable[[Path], dict[str, Any]]:
    def make(folder: Path) -> dict[str, Any]:
        from srdeploy.models.compact import SRVGGNetCompact

        torch.manual_seed(0)
        net = SRVGGNetCompact(scale=4, num_feat=64, num_conv=num_conv, act_type="prelu")
        net = _image_like(net.eval(), net.body[-1], mean=0.0, std=0.05, scale=4)  # the residual over the input
        return {"path": str(_save(net, folder, name, "params")), "arch": "compact"}

    return make


def _spandrel(name: str, build: Callable[[], nn.Module], damping: float = 1.0) -> Callable[[Path], dict[str, Any]]:
    def make(folder: Path) -> dict[str, Any]:
        from srdeploy.models.spandrel_import import import_spandrel

        import_spandrel()
        torch.manual_seed(0)
        net = build().eval()
        if damping != 1.0:  # see DAMPING_NOTE
            with torch.no_grad():
                for p in net.parameters():
                    p.mul_(damping)
        return {"path": str(_save(net, folder, name)), "arch": "spandrel"}

    return make


SIGNAL_NOTE = (
    "Random built-in Real-ESRGAN networks get an image-like output: the last conv is rescaled so that on training "
    "crops the RRDBNet output has mean 0.45 and std 0.25, the Compact residual (over the nearest-upsampled input) "
    "std 0.05; the layers inside are untouched"
)
RANDOM_RRDB_NOTE = (
    "Random RRDBNets use PyTorch's default initialisation, not BasicSR's (Kaiming x 0.1): with BasicSR's the "
    "untrained output is a near-constant image that INT8 reproduces exactly after 8-bit rounding (inf dB), which "
    "measures nothing"
)
DAMPING_NOTE = (
    "SPAN's random weights are halved: at PyTorch's default init its six sigmoid-attention blocks on 0..255 inputs "
    "amplify any rounding chaotically (a trained SPAN is well conditioned)"
)


def _span() -> nn.Module:
    from spandrel.architectures.SPAN import SPAN

    return SPAN(num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=4)


def _plksr() -> nn.Module:
    from spandrel.architectures.PLKSR import PLKSR

    return PLKSR(dim=64, n_blocks=12, upscaling_factor=4, kernel_size=13, split_ratio=0.25)


def _swinir_light() -> nn.Module:
    from spandrel.architectures.SwinIR import SwinIR

    return SwinIR(
        img_size=64,
        embed_dim=60,
        depths=[6, 6, 6, 6],
        num_heads=[6, 6, 6, 6],
        window_size=8,
        mlp_ratio=2.0,
        upscale=4,
        upsampler="pixelshuffledirect",
    )


def _omnisr() -> nn.Module:
    from spandrel.architectures.OmniSR import OmniSR

    return OmniSR(num_feat=64, block_num=1, window_size=8, res_num=5, up_scale=4)


def specs() -> list[ZooSpec]:
    rrdb = "random init, shape of"
    return [
        ZooSpec("EDSR-baseline x4", "built-in", "trained (bundled)", True, _bundled("edsr_baseline_x4")),
        ZooSpec("SRResNet-BN x4", "built-in", "trained (bundled)", True, _bundled("srresnet_bn_x4")),
        ZooSpec("CARN x4", "built-in", "trained (bundled)", True, _bundled("carn_x4")),
        ZooSpec("RRDBNet x4", "built-in", f"{rrdb} RealESRGAN_x4plus", True, _rrdb("rrdb_x4", 4, 23)),
        ZooSpec("RRDBNet x4 6B", "built-in", f"{rrdb} RealESRGAN_x4plus_anime_6B", True, _rrdb("rrdb6b_x4", 4, 6)),
        ZooSpec("RRDBNet x2", "built-in", f"{rrdb} RealESRGAN_x2plus", True, _rrdb("rrdb_x2", 2, 23)),
        ZooSpec(
            "Compact x4 (32 convs)",
            "built-in",
            "random init, shape of realesr-general-x4v3",
            True,
            _compact("compact32_x4", 32),
        ),
        ZooSpec(
            "Compact x4 (16 convs)",
            "built-in",
            "random init, shape of realesr-animevideov3",
            True,
            _compact("compact16_x4", 16),
        ),
        ZooSpec("SPAN x4", "spandrel", "random init (halved), SPAN-48", True, _spandrel("span_x4", _span, 0.5)),
        ZooSpec("PLKSR x4", "spandrel", "random init, PLKSR-64 (12 blocks)", True, _spandrel("plksr_x4", _plksr)),
        ZooSpec(
            "SwinIR-light x4",
            "spandrel",
            "random init, SwinIR lightweight",
            False,
            _spandrel("swinir_x4", _swinir_light),
        ),
        ZooSpec("OmniSR x4", "spandrel", "random init, OmniSR-64", False, _spandrel("omnisr_x4", _omnisr)),
    ]


def parameters(module: nn.Module) -> float:
    """Millions of parameters."""
    return sum(p.numel() for p in module.parameters()) / 1e6
