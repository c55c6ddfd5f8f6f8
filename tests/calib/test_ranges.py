"""MSE ranges: the clip search shrinks a long-tailed range, and quant.clip_floor bounds how far."""

from __future__ import annotations

import numpy as np

from srdeploy.calib.observers import SiteStats
from srdeploy.calib.ranges import mse


def _stats(x: np.ndarray) -> SiteStats:
    c = np.zeros(1, dtype=np.float32)
    return SiteStats("s", 1, float(x.min()), float(x.max()), float(x.min()), float(x.max()), c, c, c, c, c, x[None])


def test_clip_floor_bounds_the_mse_clip() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.laplace(0, 1, 200_000), [60.0, -60.0]]).astype(np.float32)  # rare large peaks
    lo, hi = mse(_stats(x), 8, "symmetric", {})
    assert hi < 0.7 * x.max()  # unbounded, the search clips the rare peaks away
    lo_f, hi_f = mse(_stats(x), 8, "symmetric", {"clip_floor": 0.8})
    assert hi_f >= 0.8 * x.max() - 1e-6 and lo_f <= 0.8 * x.min() + 1e-6
    assert hi_f > hi
