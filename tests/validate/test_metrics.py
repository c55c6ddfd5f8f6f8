"""PSNR-Y and SSIM-Y against scikit-image's implementations (the SR protocol's Y channel and shave)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srdeploy.data.color import rgb_to_y
from srdeploy.validate.metrics import psnr_float, psnr_rgb, psnr_y, quantize_8bit, shave, ssim_y


def pair(seed: int = 0, noise: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hr = rng.random((40, 52, 3)).astype(np.float32)
    sr = np.clip(hr + rng.normal(0, noise, hr.shape), 0, 1).astype(np.float32)
    return sr, hr


def y8(img: np.ndarray, border: int) -> np.ndarray:
    return shave(rgb_to_y(quantize_8bit(img)), border)


@pytest.mark.parametrize("border", [0, 2, 4])
def test_psnr_y_matches_skimage(border: int) -> None:
    sr, hr = pair()
    ref = peak_signal_noise_ratio(y8(hr, border), y8(sr, border), data_range=255)
    assert psnr_y(sr, hr, border) == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("noise", [0.01, 0.1])
def test_ssim_y_matches_skimage_gaussian_ssim(noise: float) -> None:
    sr, hr = pair(1, noise)
    ref = structural_similarity(
        y8(hr, 4), y8(sr, 4), data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim_y(sr, hr, 4) == pytest.approx(ref, abs=1e-6)


def test_rgb_and_float_psnr() -> None:
    sr, hr = pair(2)
    assert psnr_rgb(sr, hr, 3) == pytest.approx(
        peak_signal_noise_ratio(shave(quantize_8bit(hr), 3), shave(quantize_8bit(sr), 3), data_range=1.0), abs=1e-6
    )
    assert psnr_float(sr, hr) == pytest.approx(peak_signal_noise_ratio(hr, sr, data_range=1.0), abs=1e-5)
    assert psnr_float(hr, hr) == float("inf")


def test_y_channel_is_bt601() -> None:
    assert rgb_to_y(np.array([0.0, 0.0, 0.0])) == pytest.approx(16.0)
    assert rgb_to_y(np.array([1.0, 1.0, 1.0])) == pytest.approx(235.0)


def test_mean_psnr_leaves_identical_images_out_unless_all_are() -> None:
    import math

    from srdeploy.validate.compare import Comparison, ImageRow

    def row(image: str, vs_fp32: float) -> ImageRow:
        return ImageRow(image, "sim:ort", {0: 1}, 30.0, 0.9, 29.0, vs_fp32, 0.0)

    mixed = Comparison([row("a", 50.0), row("b", math.inf), row("c", 54.0)])
    assert mixed.mean("sim:ort", "psnr_vs_fp32") == 52.0
    assert Comparison([row("a", math.inf)]).mean("sim:ort", "psnr_vs_fp32") == math.inf
    assert Comparison([row("a", 50.0)]).mean("fp32", "psnr_vs_fp32") is None
