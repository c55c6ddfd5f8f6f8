"""Small random-initialised networks of spandrel's SR families (x2), built by the real spandrel, for the tests
that load, export, build and run them. Each is a few thousand parameters so a test costs seconds, and each keeps
the structure its family's size rules depend on (window size, split sizes, re-parameterised convs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from srdeploy.models.spandrel_import import import_spandrel

SCALE = 2
# conv-only families (any size, any batch) and the window/attention families (padded to their window)
CONV_ARCHS = ("ESRGAN", "Compact", "PLKSR", "SPAN")
WINDOW_ARCHS = ("SwinIR", "HAT", "DAT", "OmniSR")
WINDOW = 4  # window of the small window networks below (real checkpoints: 8 to 16)


def spandrel_or_skip():
    try:
        return import_spandrel()
    except Exception as exc:  # not installed, or not importable beside this torch
        pytest.skip(f"spandrel not importable: {type(exc).__name__}: {exc}")


def _factories() -> dict[str, Callable[[], torch.nn.Module]]:
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.DAT import DAT
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.HAT import HAT
    from spandrel.architectures.OmniSR import OmniSR
    from spandrel.architectures.PLKSR import PLKSR
    from spandrel.architectures.SPAN import SPAN
    from spandrel.architectures.SwinIR import SwinIR

    swin = dict(img_size=16, embed_dim=12, depths=[2], num_heads=[2], window_size=WINDOW, mlp_ratio=2.0)
    return {
        "ESRGAN": lambda: ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=SCALE),
        "Compact": lambda: Compact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=2, upscale=SCALE),
        "PLKSR": lambda: PLKSR(dim=16, n_blocks=2, upscaling_factor=SCALE, kernel_size=7),
        "SPAN": lambda: SPAN(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=SCALE),
        "SwinIR": lambda: SwinIR(**swin, upscale=SCALE, upsampler="pixelshuffledirect"),
        "HAT": lambda: HAT(**swin, compress_ratio=3, squeeze_factor=4, upscale=SCALE, num_feat=16),
        # DAT's smallest consistent width: its position bias has dim // 32 features
        "DAT": lambda: DAT(
            img_size=16,
            embed_dim=32,
            split_size=[2, WINDOW],
            depth=[2],
            num_heads=[2],
            expansion_factor=2.0,
            upscale=SCALE,
            upsampler="pixelshuffledirect",
        ),
        "OmniSR": lambda: OmniSR(num_feat=16, block_num=1, window_size=WINDOW, res_num=1, up_scale=SCALE),
    }


# Random SPAN (inputs scaled to 0..255, six sigmoid-attention blocks) amplifies any rounding chaotically: at
# PyTorch's default init its INT8 weights alone were 18 dB from fp32, and ONNX Runtime's fused integer kernels
# 26 dB from the exact simulation. Damped weights make it a well-conditioned network, as a trained one is.
DAMPING = {"SPAN": 0.5}


def build_network(arch: str, seed: int = 0) -> torch.nn.Module:
    spandrel_or_skip()
    torch.manual_seed(seed)
    net = _factories()[arch]().eval()
    if arch in DAMPING:
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(DAMPING[arch])
    return net


def save_network(arch: str, folder: Path, seed: int = 0) -> Path:
    """The network's state dict as a .pth file, the way checkpoints arrive."""
    path = folder / f"{arch.lower()}_x{SCALE}.pth"
    torch.save(build_network(arch, seed).state_dict(), path)
    return path
