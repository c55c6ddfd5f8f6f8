"""Tier routing for the app runtime, without PyTorch.

The build's selector routes by ``calib.complexity`` (1000 x mean |Sobel| of the grayscale LR
input). That implementation uses torch; an embeddable upscaler should not import torch (seconds of
start-up and hundreds of MB of RSS) just to compute one statistic per tile. This is the same
formula in NumPy. It is deterministic (no thread-count dependent reductions), and agrees with the
torch version to ~1e-6 relative, so a tile lands in a different tier than in validation only if its
statistic sits within float rounding of a threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from srdeploy.errors import BuildFolderError

STATISTIC = "sobel_mean_x1000"  # must match srdeploy.calib.complexity.STATISTIC
_GRAY = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def complexity_np(chw: np.ndarray) -> float:
    """(3,H,W) RGB float in [0,1] -> the selector statistic (same definition as calib.complexity)."""
    gray = np.tensordot(_GRAY, np.asarray(chw, dtype=np.float32), axes=1)
    p = np.pad(gray, 1, mode="edge")
    # Sobel / 8, separable: smooth [1,2,1] across, difference [-1,0,1] along.
    sy = p[:-2, :] + 2.0 * p[1:-1, :] + p[2:, :]  # (H, W+2)
    sx = p[:, :-2] + 2.0 * p[:, 1:-1] + p[:, 2:]  # (H+2, W)
    gx = (sy[:, 2:] - sy[:, :-2]) / 8.0
    gy = (sx[2:, :] - sx[:-2, :]) / 8.0
    total = np.abs(gx).sum(dtype=np.float64) + np.abs(gy).sum(dtype=np.float64)
    return float(1000.0 * total / (2.0 * gray.size))


def make_router(selector: Mapping[str, Any] | None, default_tier: int, tiers: set[int]) -> Callable[[np.ndarray], int]:
    """``selector`` as in tiers.json ({statistic, thresholds, tiers}); None routes to the default."""
    if selector is None:
        return lambda _x: default_tier
    if selector.get("statistic") != STATISTIC:
        raise BuildFolderError(
            f"tiers.json selector uses statistic {selector.get('statistic')!r}; this srdeploy computes {STATISTIC!r}",
            "rebuild the folder with this srdeploy version",
        )
    thresholds = np.asarray(selector["thresholds"], dtype=np.float64)
    targets = [int(t) for t in selector["tiers"]]
    if len(targets) != len(thresholds) + 1 or np.any(np.diff(thresholds) < 0):
        raise BuildFolderError(
            f"tiers.json selector is inconsistent: {len(thresholds)} thresholds for {len(targets)} tiers",
            "rebuild the folder (tiers.json must have one more tier than thresholds, thresholds ascending)",
        )
    unknown = sorted(set(targets) - tiers)
    if unknown:
        raise BuildFolderError(f"tiers.json selector routes to tiers {unknown} that have no model file", "rebuild")

    def route(x: np.ndarray) -> int:
        # Same rule as quant.plan.Selector.route: value >= thresholds[i] goes past tier i.
        return targets[int(np.searchsorted(thresholds, complexity_np(x), side="right"))]

    return route
