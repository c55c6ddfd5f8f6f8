"""Colour conversions of the SR evaluation protocol (ITU-R BT.601, as in MATLAB's rgb2ycbcr)."""

from __future__ import annotations

import numpy as np

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64)


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """Y channel in [16, 235] for RGB in [0, 1]; accepts HxWx3 (or ...x3) arrays."""
    return (16.0 + np.asarray(image, dtype=np.float64) @ _Y_WEIGHTS).astype(np.float64)


def rgb_to_gray(image: np.ndarray) -> np.ndarray:
    """Luma in [0, 1] (BT.601 weights), used by complexity statistics."""
    return np.asarray(image, dtype=np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
