"""Image quality metrics of the SR protocol: PSNR and SSIM on the Y channel with a border shave.

All inputs are HxWx3 float arrays in [0, 1] (RGB).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from srdeploy.data.color import rgb_to_y


def shave(image: np.ndarray, border: int) -> np.ndarray:
    return image[border:-border, border:-border] if border > 0 else image


def _mse_to_psnr(mse: float, peak: float) -> float:
    if mse <= 0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def psnr_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    """PSNR on the BT.601 Y channel (peak 255), ``border`` pixels shaved (= scale in SR papers)."""
    a = shave(rgb_to_y(quantize_8bit(sr)), border)
    b = shave(rgb_to_y(quantize_8bit(hr)), border)
    return _mse_to_psnr(float(np.mean((a - b) ** 2)), 255.0)


def psnr_rgb(sr: np.ndarray, hr: np.ndarray, border: int = 0) -> float:
    a = shave(quantize_8bit(sr), border).astype(np.float64)
    b = shave(quantize_8bit(hr), border).astype(np.float64)
    return _mse_to_psnr(float(np.mean((a - b) ** 2)), 1.0)


def psnr_float(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """PSNR between two float outputs without 8-bit rounding (for comparing executions)."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return _mse_to_psnr(float(np.mean(diff**2)), peak)


def quantize_8bit(image: np.ndarray) -> np.ndarray:
    """Outputs are saved as 8-bit images; metrics follow (as the SR benchmarks do)."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0) / 255.0


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    """SSIM (Wang et al. 2004; 11x11 Gaussian, sigma 1.5, 'valid' filtering) on Y in [0,255]."""
    a = shave(rgb_to_y(quantize_8bit(sr)), border)
    b = shave(rgb_to_y(quantize_8bit(hr)), border)
    return ssim_gray(a, b, peak=255.0)


def ssim_gray(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    if min(a.shape) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after shaving, got {a.shape}")
    x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))[None, None]
    y = torch.from_numpy(np.ascontiguousarray(b, dtype=np.float64))[None, None]
    w = _gaussian_window()
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_x, mu_y = F.conv2d(x, w), F.conv2d(y, w)
    sxx = F.conv2d(x * x, w) - mu_x**2
    syy = F.conv2d(y * y, w) - mu_y**2
    sxy = F.conv2d(x * y, w) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return float((num / den).mean())


def max_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))
