"""Synthetic content where the packages offer no real image of a category.

Low light: no freely licensed, noisy, dark photograph of good quality ships in the packages used
here besides a few OpenCV snapshots, so well-exposed photographs are re-exposed through a simple
sensor model. The model is the usual Poisson-Gaussian one (photon shot noise, which grows with the
signal, plus signal-independent read noise) applied in linear light, which is what makes real
low-light noise strongest in relative terms in the shadows and coloured per channel.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

EXPOSURE = 1.0 / 24.0  # about -4.6 EV below the source exposure
FULL_WELL = 4000.0  # electrons at the source's white level (a small phone-camera pixel)
READ_NOISE = 4.0  # electrons rms
GAIN = 4.0  # digital gain after capture (+2 EV): the result stays dark (-2.6 EV), as a night shot does


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)


def seed_for(name: str) -> int:
    """A seed fixed by the image name, so every run draws the same noise."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def low_light(im: Image.Image, name: str) -> tuple[Image.Image, str]:
    """Re-expose an sRGB image as a dark, noisy capture; return it with a description."""
    seed = seed_for(name)
    # RandomState, unlike Generator, has a stream that NumPy keeps stable across versions.
    rng = np.random.RandomState(seed)
    srgb = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
    electrons = _srgb_to_linear(srgb) * EXPOSURE * FULL_WELL
    captured = rng.poisson(electrons).astype(np.float64) + rng.normal(0.0, READ_NOISE, electrons.shape)
    linear = captured / (EXPOSURE * FULL_WELL) * EXPOSURE * GAIN
    out = np.round(_linear_to_srgb(linear) * 255.0).astype(np.uint8)
    how = (
        f"synthetic low light: sRGB -> linear, exposure x{EXPOSURE:.4f}, Poisson shot noise "
        f"(full well {FULL_WELL:.0f} e-), Gaussian read noise {READ_NOISE:.0f} e- rms, gain x{GAIN:.0f}, "
        f"linear -> sRGB, 8-bit; numpy RandomState({seed})"
    )
    return Image.fromarray(out, "RGB"), how
