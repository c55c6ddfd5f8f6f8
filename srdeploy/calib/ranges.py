"""Range methods: from a site's statistics and a grid to the real interval [lo, hi] it covers.

Registered in ``RANGE_METHODS``; each is ``fn(stats, bits, grid, options) -> (lo, hi)``. Grids:
``symmetric`` (signed, zero point 0), ``unsigned_zero`` (q >= 0, zero point 0; for non-negative
tensors), ``asymmetric`` (unsigned with a zero point; ONNX Runtime's uint8 activations).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from srdeploy.calib.observers import SiteStats
from srdeploy.quant.grid import fake_quant_np, fp16_representable, qrange
from srdeploy.quant.spec import fit_grid, spec_for_range

RangeFn = Callable[[SiteStats, int, str, Mapping[str, Any]], tuple[float, float]]

# DAQ's Gaussian-optimal uniform step (in sigma) for a 2^b-level grid, and the clip it implies:
# (2^(b-1) - 1/2) steps either side of the mean (2.39 sigma at 2 bits ... 7.27 sigma at 8).
DAQ_GAUSSIAN_STEP = {2: 1.596, 3: 0.996, 4: 0.586, 5: 0.335, 6: 0.188, 7: 0.104, 8: 0.057}
DAQ_SIGMA_CLIP = {b: (2 ** (b - 1) - 0.5) * s for b, s in DAQ_GAUSSIAN_STEP.items()}
MSE_SAMPLE = 65536  # values the MSE clip search evaluates (an even stride through the site's sample)


def fake_quant_interval(x: np.ndarray, lo: float, hi: float, bits: int, grid: str) -> np.ndarray:
    """Fake-quantize ``x`` on the grid of kind ``grid`` fitted to [lo, hi] (the plan's own arithmetic)."""
    return spec_for_range(*fit_grid(lo, hi, grid), bits, grid).fake_quant(x)


def mse_search(
    x: np.ndarray, lo: float, hi: float, bits: int, grid: str, steps: int = 40, floor: float = 0.05
) -> tuple[float, float]:
    """Shrink [lo, hi] by a common factor to minimise the fake-quantization MSE on ``x``.

    Coarse grid over [floor, 1], then a finer pass around the best factor.
    """
    lo, hi = fit_grid(lo, hi, grid)
    if hi - lo <= 0:
        return lo, hi

    def err(a: float) -> float:
        return float(np.mean((fake_quant_interval(x, lo * a, hi * a, bits, grid) - x) ** 2))

    coarse = np.linspace(floor, 1.0, steps)
    errs = [err(a) for a in coarse]
    best = int(np.argmin(errs))
    step = coarse[1] - coarse[0]
    fine = np.linspace(max(floor, coarse[best] - step), min(1.0, coarse[best] + step), 11)
    errs_f = [err(a) for a in fine]
    a = float(fine[int(np.argmin(errs_f))])
    return lo * a, hi * a


def minmax(stats: SiteStats, bits: int, grid: str, options: Mapping[str, Any]) -> tuple[float, float]:
    return fit_grid(stats.min, stats.max, grid)


def ema_minmax(stats: SiteStats, bits: int, grid: str, options: Mapping[str, Any]) -> tuple[float, float]:
    return fit_grid(stats.ema_min, stats.ema_max, grid)


def percentile(stats: SiteStats, bits: int, grid: str, options: Mapping[str, Any]) -> tuple[float, float]:
    p = float(options.get("percentile", 99.99))
    x = stats.flat_sample()
    if grid == "symmetric":
        m = float(np.percentile(np.abs(x), p))
        return -m, m
    return fit_grid(float(np.percentile(x, 100.0 - p)), float(np.percentile(x, p)), grid)


def mse(stats: SiteStats, bits: int, grid: str, options: Mapping[str, Any]) -> tuple[float, float]:
    """Bit-aware clipping: start from min/max (EMA-smoothed if asked), minimise MSE at ``bits``."""
    start = ema_minmax if options.get("ema_init", False) else minmax
    lo, hi = start(stats, bits, grid, options)
    x = stats.flat_sample()
    # 8 bits: the tails a subsample loses set the clip (default recipe, ort: 0.070 dB drop subsampled, 0.060 full)
    if bits < 8:
        x = x[:: -(-x.size // MSE_SAMPLE)]  # ceil stride: every channel keeps its share of the values
    return mse_search(x, lo, hi, bits, grid, floor=float(options.get("clip_floor", 0.05)))


def gaussian(stats: SiteStats, bits: int, grid: str, options: Mapping[str, Any]) -> tuple[float, float]:
    """DAQ's clip applied per tensor: mean +- k(bits) sigma, inside the observed range."""
    x = stats.flat_sample()
    m, s = float(np.mean(x)), float(np.std(x))
    k = DAQ_SIGMA_CLIP[bits]
    return fit_grid(max(stats.min, m - k * s), min(stats.max, m + k * s), grid)


RANGE_METHODS: dict[str, RangeFn] = {
    "minmax": minmax,
    "ema_minmax": ema_minmax,
    "percentile": percentile,
    "mse": mse,
    "gaussian": gaussian,
}


def weight_absmax(w: np.ndarray, bits: int, method: str) -> np.ndarray:
    """Per-output-channel clip for a symmetric weight grid: ``minmax`` or ``mse`` search."""
    flat = np.asarray(w, dtype=np.float32).reshape(w.shape[0], -1)
    top = np.abs(flat).max(1)
    if method == "minmax":
        return top
    if method != "mse":
        raise ValueError(f"unknown weight range method {method!r} (minmax, mse)")
    qmin, qmax = qrange(bits, True, narrow=True)
    factors = np.linspace(0.3, 1.0, 36)
    best_err = np.full(flat.shape[0], np.inf)
    best = top.copy()
    for a in factors:
        m = np.maximum(top * a, 1e-12)
        s = fp16_representable(m / qmax)[:, None]
        err = ((fake_quant_np(flat, s, np.zeros_like(s), qmin, qmax) - flat) ** 2).mean(1)
        better = err < best_err
        best_err[better], best[better] = err[better], (top * a)[better]
    return best
