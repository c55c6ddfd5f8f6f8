"""Bicubic degradation (antialiased, MATLAB-imresize-like) used to make LR inputs from HR."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def crop_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    h, w = image.shape[:2]
    return image[: h - h % multiple, : w - w % multiple]


def resize_bicubic(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """NCHW float resize with the Keys a=-0.5 cubic kernel (MATLAB's imresize, PIL's BICUBIC), widened when
    shrinking (antialiasing). PyTorch's plain bicubic uses a=-0.75; its antialiased path uses a=-0.5 in both
    directions, which is why ``antialias`` is on for upscaling too (tests/data/test_degrade.py checks PIL)."""
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True)


def bicubic_downscale(hr: np.ndarray, scale: int, quantize: bool = True) -> np.ndarray:
    """HxWx3 float [0,1] -> LR of size (H/scale, W/scale). HR must be a multiple of scale.

    ``quantize`` rounds to 8 bit, as LR images stored as PNG are in the SR benchmarks.
    """
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"HR size {w}x{h} is not a multiple of {scale}; crop with crop_to_multiple first")
    t = torch.from_numpy(np.array(hr, dtype=np.float32)).permute(2, 0, 1)[None]
    lr = resize_bicubic(t, (h // scale, w // scale))[0].permute(1, 2, 0).clamp(0, 1).numpy()
    if quantize:
        lr = np.round(lr * 255.0) / 255.0
    return lr.astype(np.float32)


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic baseline every SR table prints beside the networks."""
    t = torch.from_numpy(np.array(lr, dtype=np.float32)).permute(2, 0, 1)[None]
    h, w = lr.shape[:2]
    return resize_bicubic(t, (h * scale, w * scale))[0].permute(1, 2, 0).clamp(0, 1).numpy()
