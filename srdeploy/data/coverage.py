"""Does a calibration set represent real content? Warnings from measured statistics of its LR patches.

Static INT8 ranges are fitted to the calibration activations; content the set lacks (deep shadows,
clipped highlights, hard edges, smooth gradients, colour) then falls outside or wastes the fitted
ranges, and the deployed model loses accuracy exactly there (issue 12: a high-contrast monochrome
photograph and a near-flat image lost 1.3 and 0.8 dB). This module names what is missing so the
build can say so instead of producing a silently bad range.

Thresholds are set against the bundled ``train`` set (no warning for 64 patches of 48 px at x2-x4,
several seeds) and each fires on a small set made to lack exactly that property
(tests/data/test_coverage.py); the measured margins are in the comments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from srdeploy.errors import DataError

_GRAY = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # as calib/complexity.py

# Bundled train set, 64 patches of 48 px at x2/x3/x4, seeds 1-5 (15 draws): the smallest value
# measured is given per threshold; each threshold sits several times below it.
MIN_PATCHES = 32  # a 99.99th-percentile range from fewer patches rests on a handful of pixels
MIN_IMAGES = 8  # ranges vary per image (DAQ/AdaBM); fewer images let one image set them
FLAT_COLOUR_SPAN = 2.0 / 255.0  # every channel within 2 levels: one colour, nothing to calibrate
MIN_LUMA_SPAN = 0.6  # luma p0.1..p99.9; train >= 0.97
DARK_LUMA, MIN_DARK_FRACTION = 0.06, 0.002  # train: >= 0.85% of pixels below luma 0.06
BRIGHT_LEVEL, MIN_BRIGHT_FRACTION = 0.94, 0.002  # brightest channel; train: >= 7.1% above 0.94
EDGE_COMPLEXITY = 15.0  # 90th-percentile patch complexity; train >= 34.9
SMOOTH_COMPLEXITY, MIN_SMOOTH_FRACTION = 8.0, 0.02  # train: >= 7.8% of patches below 8 (old 28-image set 4.7%)
MIN_COLOURFULNESS = 0.02  # Hasler-Suesstrunk M on [0,1]; train >= 0.31, grayscale 0


@dataclass(frozen=True)
class PatchStats:
    """Statistics of a calibration set's LR patches (RGB in [0, 1])."""

    patches: int
    channel_span: float  # largest (max - min) over the three channels
    luma_p001: float
    luma_p999: float
    dark_fraction: float  # pixels with luma < DARK_LUMA
    bright_fraction: float  # pixels whose brightest channel > BRIGHT_LEVEL
    complexity_p90: float  # of the per-patch selector statistic (1000 x mean |Sobel| of luma)
    smooth_fraction: float  # patches with complexity < SMOOTH_COMPLEXITY
    colourfulness: float  # Hasler & Suesstrunk (2003) M, on [0, 1] values


def patch_complexity(patches: np.ndarray) -> np.ndarray:
    """(N,3,H,W) -> (N,) the tier selector's statistic (calib/complexity.py), vectorised in NumPy."""
    gray = np.tensordot(np.asarray(patches, dtype=np.float32), _GRAY, axes=([1], [0]))  # (N,H,W)
    p = np.pad(gray, ((0, 0), (1, 1), (1, 1)), mode="edge")
    sy = p[:, :-2, :] + 2.0 * p[:, 1:-1, :] + p[:, 2:, :]
    sx = p[:, :, :-2] + 2.0 * p[:, :, 1:-1] + p[:, :, 2:]
    gx = (sy[:, :, 2:] - sy[:, :, :-2]) / 8.0
    gy = (sx[:, 2:, :] - sx[:, :-2, :]) / 8.0
    total = np.abs(gx).sum(axis=(1, 2), dtype=np.float64) + np.abs(gy).sum(axis=(1, 2), dtype=np.float64)
    return 1000.0 * total / (2.0 * gray[0].size)


def _colourfulness(rgb: np.ndarray) -> float:
    r, g, b = (rgb[:, c].astype(np.float64) for c in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def patch_statistics(patches: np.ndarray) -> PatchStats:
    x = np.asarray(patches)
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[0] == 0:
        raise DataError(
            f"calibration patches must be a non-empty (N, 3, H, W) array, got shape {x.shape}",
            "pass the output of srdeploy.data.sets.lr_patches",
        )
    luma = np.tensordot(x.astype(np.float32), _GRAY, axes=([1], [0]))
    lo, hi = np.quantile(luma, [0.001, 0.999])
    complexity = patch_complexity(x)
    return PatchStats(
        patches=int(x.shape[0]),
        channel_span=float((x.max(axis=(0, 2, 3)) - x.min(axis=(0, 2, 3))).max()),
        luma_p001=float(lo),
        luma_p999=float(hi),
        dark_fraction=float((luma < DARK_LUMA).mean()),
        bright_fraction=float((x.max(axis=1) > BRIGHT_LEVEL).mean()),
        complexity_p90=float(np.quantile(complexity, 0.9)),
        smooth_fraction=float((complexity < SMOOTH_COMPLEXITY).mean()),
        colourfulness=_colourfulness(x),
    )


def _count_warnings(n_patches: int, source_images: int) -> list[str]:
    out = []
    if n_patches < MIN_PATCHES:
        out.append(
            f"Only {n_patches} calibration patches: activation ranges from so few are unreliable; "
            f"raise calib.patches to at least {MIN_PATCHES} (64 or more is better)."
        )
    if source_images < MIN_IMAGES:
        out.append(
            f"The calibration patches come from only {source_images} distinct image(s): one image's content "
            f"sets the ranges; use at least {MIN_IMAGES} different images (the bundled 'train' set has varied content)."
        )
    return out


def _content_warnings(s: PatchStats) -> list[str]:
    out = []
    if s.luma_p999 - s.luma_p001 < MIN_LUMA_SPAN:
        out.append(
            f"The calibration set has almost no dynamic range (luma {s.luma_p001:.2f}-{s.luma_p999:.2f}): "
            "high-contrast content will clip; add images with deep shadows and bright highlights."
        )
    if s.dark_fraction < MIN_DARK_FRACTION:
        out.append(
            f"The calibration set has no dark regions ({100 * s.dark_fraction:.2f}% of pixels below luma "
            f"{DARK_LUMA}): add images with shadows or night scenes."
        )
    if s.bright_fraction < MIN_BRIGHT_FRACTION:
        out.append(
            f"The calibration set has no bright or saturated regions ({100 * s.bright_fraction:.2f}% of pixels "
            f"above {BRIGHT_LEVEL}): add images with sky, highlights, white paper or white UI."
        )
    if s.complexity_p90 < EDGE_COMPLEXITY:
        out.append(
            f"The calibration set has no edges or texture (90th-percentile Sobel complexity "
            f"{s.complexity_p90:.1f} < {EDGE_COMPLEXITY:.0f}): add sharp, detailed images "
            "(text, foliage, architecture)."
        )
    if s.smooth_fraction < MIN_SMOOTH_FRACTION:
        out.append(
            f"The calibration set has no smooth regions (only {100 * s.smooth_fraction:.1f}% of patches below "
            f"complexity {SMOOTH_COMPLEXITY:.0f}): add images with sky, gradients or defocused backgrounds."
        )
    if s.colourfulness < MIN_COLOURFULNESS:
        out.append(
            f"The calibration set is grayscale only (colourfulness {s.colourfulness:.3f}): colour content "
            "will fall outside its chroma ranges; add colour photographs."
        )
    return out


def calibration_warnings(patches: np.ndarray, source_images: int) -> list[str]:
    """One sentence per way the calibration set cannot represent real content ([] when it can).

    ``patches``: (N, 3, H, W) LR patches in [0, 1] as lr_patches returns them; ``source_images``:
    how many distinct images they were cut from (srdeploy.data.sets.patch_source_count).
    """
    stats = patch_statistics(patches)
    out = _count_warnings(stats.patches, source_images)
    if stats.channel_span < FLAT_COLOUR_SPAN:
        colour = np.round(np.asarray(patches)[0, :, 0, 0] * 255).astype(int).tolist()
        out.append(
            f"Every calibration patch is the same flat colour (RGB {colour}): the ranges it gives fit no real "
            "image; calibrate on photographs such as the bundled 'train' set."
        )
        return out  # the content checks would only restate this
    return out + _content_warnings(stats)
