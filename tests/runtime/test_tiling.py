"""runtime/tiling.py with a NumPy stand-in model whose receptive field is known exactly.

``k`` passes of a zero-padded 3x3 box filter see exactly ``k`` LR pixels each way, like a conv net
with zero padding; nearest-neighbour upscaling then makes it an SR "model".
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from srdeploy.runtime.tiling import DEFAULT_MAX_BATCH_PIXELS, plan_tiles, tile_grid, upscale_tiled


def box_model(k: int, scale: int):
    def infer(batch: np.ndarray, tier: int) -> np.ndarray:
        x = batch.astype(np.float32)
        for _ in range(k):
            p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
            h, w = x.shape[2:]
            x = sum(p[:, :, i : i + h, j : j + w] for i in range(3) for j in range(3)) / np.float32(9)
        return (x + tier).repeat(scale, axis=2).repeat(scale, axis=3)

    return infer


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).random((3, 45, 61), dtype=np.float32)


@pytest.mark.parametrize("tile,overlap", [(8, 3), (16, 3), (16, 5), (7, 4), (100, 3)])
def test_tiled_equals_whole_when_overlap_covers_receptive_field(image: np.ndarray, tile: int, overlap: int) -> None:
    infer = box_model(3, 2)
    whole = infer(image[None], 0)[0]
    tiled, stats = upscale_tiled(image, 2, infer, tile, overlap)
    assert np.array_equal(tiled, whole)
    assert stats.tiles == len(tile_grid(45, 61, tile, overlap))


def test_overlap_below_receptive_field_shows_seams(image: np.ndarray) -> None:
    """The equality above is not vacuous: too little overlap changes pixels next to tile seams only."""
    k, tile = 3, 16
    infer = box_model(k, 1)
    whole = infer(image[None], 0)[0]
    errors = []
    for overlap in range(k + 1):
        tiled, _ = upscale_tiled(image, 1, infer, tile, overlap)
        errors.append(float(np.abs(tiled - whole).mean()))
    assert errors[0] > 1e-3 and errors[-1] == 0.0
    assert all(a > b for a, b in itertools.pairwise(errors))  # more context, less error
    tiled, _ = upscale_tiled(image, 1, infer, tile, 0)
    diff = np.abs(tiled - whole).max(axis=0)
    seams = np.arange(tile, 61, tile)
    far = np.ones(61, dtype=bool)
    for s in seams:
        far[max(0, s - k) : s + k] = False
    assert np.all(diff[:, far][: tile - k] == 0)  # rows/cols away from every seam are exact
    assert diff[:, ~far].max() > 0.01


def test_grid_cores_partition_the_image() -> None:
    for h, w, tile, overlap in [(45, 61, 16, 4), (1, 1, 8, 2), (20, 200, 32, 0), (64, 64, 64, 16)]:
        cover = np.zeros((h, w), dtype=int)
        sizes = set()
        for s in tile_grid(h, w, tile, overlap):
            assert 0 <= s.y0 <= s.cy0 < s.cy1 <= s.y1 <= h and 0 <= s.x0 <= s.cx0 < s.cx1 <= s.x1 <= w
            cover[s.cy0 : s.cy1, s.cx0 : s.cx1] += 1
            sizes.add((s.y1 - s.y0, s.x1 - s.x0))
        assert np.all(cover == 1)
        assert len(sizes) == 1  # windows shift inward at the border, so tiles batch together
    with pytest.raises(ValueError):
        tile_grid(10, 10, 0, 2)


def test_routing_groups_tiles_by_tier_and_batches_them(image: np.ndarray) -> None:
    calls: list[tuple[int, int]] = []
    base = box_model(1, 2)

    def infer(batch: np.ndarray, tier: int) -> np.ndarray:
        calls.append((tier, batch.shape[0]))
        return base(batch, tier)

    def route(window: np.ndarray) -> int:
        return int(window.mean() > 0.5)

    out, stats = upscale_tiled(image, 2, infer, 8, 2, route=route, batch_size=3)
    assert sum(stats.tiles_per_tier.values()) == stats.tiles == sum(n for _, n in calls)
    assert stats.batches == len(calls) and all(n <= 3 for _, n in calls)
    assert [t for t, _ in calls] == sorted(t for t, _ in calls)  # one tier at a time
    # Each core carries its tier's offset, so the output shows which model ran where.
    for s in tile_grid(45, 61, 8, 2):
        tier = route(image[:, s.y0 : s.y1, s.x0 : s.x1])
        core = out[:, s.cy0 * 2 : s.cy1 * 2, s.cx0 * 2 : s.cx1 * 2]
        assert np.all(core >= tier) and (tier == 1 or np.all(core < 1))


def test_convert_writes_into_a_channels_last_container(image: np.ndarray) -> None:
    container = np.zeros((90, 122, 3), dtype=np.uint8)
    infer = box_model(1, 2)
    upscale_tiled(
        image, 2, infer, 16, 1, out=container.transpose(2, 0, 1), convert=lambda c: np.rint(c * 255).astype(np.uint8)
    )
    expected = np.rint(infer(image[None], 0)[0] * 255).astype(np.uint8).transpose(1, 2, 0)
    assert np.array_equal(container, expected)


def test_plan_tiles_bounds_pixels_per_call() -> None:
    assert plan_tiles(100, 100, None, 16, 4, DEFAULT_MAX_BATCH_PIXELS) == (None, 1)
    tile, batch = plan_tiles(3000, 4000, None, 16, 4, DEFAULT_MAX_BATCH_PIXELS)
    assert tile is not None and tile % 32 == 0 and (tile + 32) ** 2 * batch <= DEFAULT_MAX_BATCH_PIXELS
    assert plan_tiles(3000, 4000, 64, 16, 4, DEFAULT_MAX_BATCH_PIXELS) == (64, 4)
    assert plan_tiles(3000, 4000, 64, 16, 4, 96 * 96 * 2) == (64, 2)  # budget beats batch_size
    assert plan_tiles(3000, 4000, 512, 16, 4, 1000)[1] == 1  # never below one tile
