"""The bicubic kernel of the SR protocol: Keys a=-0.5 (MATLAB imresize, PIL BICUBIC), in both directions."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from srdeploy.data.degrade import bicubic_downscale, bicubic_upscale


def pil_bicubic(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """PIL's float-mode bicubic resize per channel: an independent implementation of the same kernel."""
    return np.stack(
        [np.asarray(Image.fromarray(img[..., c], mode="F").resize(size, Image.Resampling.BICUBIC)) for c in range(3)],
        -1,
    )


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_upscale_is_the_a_minus_half_kernel(scale: int) -> None:
    lr = np.random.default_rng(scale).random((13, 17, 3)).astype(np.float32)
    ours = bicubic_upscale(lr, scale)
    ref = np.clip(pil_bicubic(lr, (17 * scale, 13 * scale)), 0, 1)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize("scale", [2, 4])
def test_downscale_is_antialiased_with_the_same_kernel(scale: int) -> None:
    hr = np.random.default_rng(7).random((13 * scale, 17 * scale, 3)).astype(np.float32)
    ours = bicubic_downscale(hr, scale, quantize=False)
    np.testing.assert_allclose(ours, np.clip(pil_bicubic(hr, (17, 13)), 0, 1), atol=1e-5)
