"""Tiled super-resolution with bounded memory.

The LR image is cut into cores of ``tile`` x ``tile`` pixels; each core is run with ``overlap``
extra LR pixels of context on every side (shifted inward at the image border so every tile has
the same size and tiles batch together), and only the core's SR pixels are kept. With an overlap
at least the network's effective receptive field the result equals whole-image inference; no
float canvas of the whole HR image is ever allocated (cores are written straight into the output).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from math import isqrt

import numpy as np

# LR pixels per inference call (tiles x window area). ONNX Runtime's CPU activations for EDSR-
# baseline x4 (INT8 `ort` profile) measured ~7 KB per LR pixel, so 2**17 pixels is ~0.9 GB at most;
# with an 8-bit 4000x3000 input and its 576 MB x4 output the process peaked at 1.27 GB (arena on, 2026-12-08;
# runtime/upscaler.py docstring; tests/runtime/test_upscaler.py::test_large_image_memory).
DEFAULT_MAX_BATCH_PIXELS = 1 << 17


@dataclass(frozen=True)
class TileSpec:
    y0: int  # input window (LR), half-open
    y1: int
    x0: int
    x1: int
    cy0: int  # core (LR), half-open
    cy1: int
    cx0: int
    cx1: int


def _axis_windows(n: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    if n <= tile + 2 * overlap:
        return [(0, n, 0, n)]
    size = tile + 2 * overlap
    out = []
    for c0 in range(0, n, tile):
        c1 = min(n, c0 + tile)
        w0 = max(0, c0 - overlap)
        w0 = min(w0, n - size)
        out.append((w0, w0 + size, c0, c1))
    return out


def tile_grid(h: int, w: int, tile: int, overlap: int) -> list[TileSpec]:
    if tile < 1 or overlap < 0:
        raise ValueError("tile must be >= 1 and overlap >= 0")
    return [
        TileSpec(y0, y1, x0, x1, cy0, cy1, cx0, cx1)
        for (y0, y1, cy0, cy1) in _axis_windows(h, tile, overlap)
        for (x0, x1, cx0, cx1) in _axis_windows(w, tile, overlap)
    ]


def plan_tiles(
    h: int, w: int, tile: int | None, overlap: int, batch_size: int, max_batch_pixels: int
) -> tuple[int | None, int]:
    """-> (tile, tiles per batch); tile None means whole-image inference.

    Without an explicit ``tile`` an image runs whole while it fits ``max_batch_pixels``, and is
    otherwise tiled with the largest multiple-of-32 core whose window fits. Batches are cut to the
    same budget, so memory is bounded by the budget, not by the image or by ``batch_size``.
    """
    if tile is None:
        if h * w <= max_batch_pixels:
            return None, 1
        tile = max(32, (isqrt(max_batch_pixels) - 2 * overlap) // 32 * 32)
    window = min(h, tile + 2 * overlap) * min(w, tile + 2 * overlap)
    return tile, max(1, min(batch_size, max_batch_pixels // window))


InferFn = Callable[[np.ndarray, int], np.ndarray]  # (N,3,h,w) float32, tier -> (N,3,sh,sw)
RouteFn = Callable[[np.ndarray], int]  # (3,h,w) LR tile -> tier


@dataclass
class TileStats:
    tiles: int
    tiles_per_tier: dict[int, int]
    batches: int


def upscale_tiled(
    lr: np.ndarray,
    scale: int,
    infer: InferFn,
    tile: int,
    overlap: int,
    route: RouteFn | None = None,
    batch_size: int = 4,
    out: np.ndarray | None = None,
    convert: Callable[[np.ndarray], np.ndarray] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, TileStats]:
    """``lr``: (3,H,W) float32 in [0,1]. Returns (3,sH,sW) (``out`` if given) and statistics.

    ``convert`` maps a float (3,h,w) core to the output array's dtype (e.g. to uint8).
    """
    _, h, w = lr.shape
    specs = tile_grid(h, w, tile, overlap)
    if out is None:
        out = np.empty((3, h * scale, w * scale), dtype=np.float32)
    groups: dict[tuple[int, int, int], list[TileSpec]] = defaultdict(list)
    tiers: Counter[int] = Counter()
    for spec in specs:
        window = lr[:, spec.y0 : spec.y1, spec.x0 : spec.x1]
        tier = route(window) if route is not None else 0
        tiers[tier] += 1
        groups[(tier, spec.y1 - spec.y0, spec.x1 - spec.x0)].append(spec)
    batches = done = 0
    for (tier, _, _), members in sorted(groups.items()):
        for start in range(0, len(members), batch_size):
            chunk = members[start : start + batch_size]
            batch = np.stack([lr[:, s.y0 : s.y1, s.x0 : s.x1] for s in chunk]).astype(np.float32, copy=False)
            sr = infer(batch, tier)
            batches += 1
            for s, y in zip(chunk, sr, strict=True):
                core = y[
                    :,
                    (s.cy0 - s.y0) * scale : (s.cy1 - s.y0) * scale,
                    (s.cx0 - s.x0) * scale : (s.cx1 - s.x0) * scale,
                ]
                out[:, s.cy0 * scale : s.cy1 * scale, s.cx0 * scale : s.cx1 * scale] = (
                    convert(core) if convert else core
                )
            done += len(chunk)
            if progress:
                progress(done, len(specs))
    return out, TileStats(tiles=len(specs), tiles_per_tier=dict(sorted(tiers.items())), batches=batches)
