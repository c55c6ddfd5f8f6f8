"""Tier routing: the selector statistic, known thresholds on flat vs textured tiles, forced
tiers, FAB accounting and determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from srdeploy.calib.complexity import complexity
from srdeploy.errors import BuildFolderError
from srdeploy.quant.plan_io import load_plan
from srdeploy.runtime.routing import complexity_np
from srdeploy.runtime.tiling import tile_grid
from srdeploy.runtime.upscaler import Upscaler

THRESHOLD = 10.0  # flat tiles score 0, seeded noise in [64, 192) ~100


def test_statistic_matches_calibration(textured: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    images = [textured.transpose(2, 0, 1) / np.float32(255), rng.random((3, 5, 7), dtype=np.float32)]
    images.append(np.zeros((3, 1, 1), dtype=np.float32))
    for chw in images:
        chw = chw.astype(np.float32)
        assert complexity_np(chw) == pytest.approx(float(complexity(chw)[0]), rel=1e-5, abs=1e-6)


@pytest.fixture
def two_tiers(tiny_build: Path, tmp_path: Path) -> Path:
    """tiers.json with a known threshold: tier 0 = the fp32 graph, tier 1 = the INT8 graph."""
    doc = {
        "scale": 2,
        "default_tier": 1,
        "selector": {"statistic": "sobel_mean_x1000", "thresholds": [THRESHOLD], "tiers": [0, 1]},
        "tiers": [
            {"index": 0, "name": "flat", "fab": 6.0, "files": {"ort": str(tiny_build / "fp32.onnx")}},
            {"index": 1, "name": "busy", "fab": 8.0, "files": {"ort": str(tiny_build / "ort" / "model.onnx")}},
        ],
    }
    path = tmp_path / "tiers.json"
    path.write_text(json.dumps(doc))
    return path


def half_flat() -> np.ndarray:
    """Left 32 columns flat grey, right 32 noise: 16-wide tiles are purely one or the other."""
    img = np.full((40, 64, 3), 128, dtype=np.uint8)
    img[:, 32:] = np.random.default_rng(0).integers(64, 192, (40, 32, 3))
    return img


def test_flat_and_textured_tiles_go_to_the_expected_tiers(two_tiers: Path, tiny_build: Path) -> None:
    img = half_flat()
    up = Upscaler(two_tiers, threads=1, tile=16, overlap=0)
    out = up.upscale(img)
    stats = up.last_stats
    assert stats is not None
    cols = len(tile_grid(40, 64, 16, 0)) // 2
    assert stats.tiles_per_tier == {0: cols, 1: cols}
    assert stats.fab == pytest.approx(7.0)  # half the tiles at 6 bits, half at 8
    # The flat half really ran the tier-0 file and the textured half the tier-1 file.
    fp32 = Upscaler(tiny_build / "fp32.onnx", threads=1, tile=16, overlap=0).upscale(img)
    int8 = Upscaler(tiny_build / "ort" / "model.onnx", threads=1, tile=16, overlap=0).upscale(img)
    assert np.array_equal(out[:, :64], fp32[:, :64]) and np.array_equal(out[:, 64:], int8[:, 64:])
    assert not np.array_equal(fp32[:, 64:], int8[:, 64:])
    whole = Upscaler(two_tiers, threads=1)
    whole.upscale(np.full((20, 20, 3), 7, dtype=np.uint8))
    assert whole.last_stats is not None and whole.last_stats.tiles_per_tier == {0: 1}


def test_forced_tier(two_tiers: Path) -> None:
    up = Upscaler(two_tiers, threads=1, tile=16, overlap=0, tier=0)
    up.upscale(half_flat())
    assert up.last_stats is not None and set(up.last_stats.tiles_per_tier) == {0}
    up.upscale(half_flat(), tier="1")
    assert set(up.last_stats.tiles_per_tier) == {1}
    with pytest.raises(BuildFolderError, match=r"tier 5.*auto.*0, 1"):
        Upscaler(two_tiers, tier=5)
    with pytest.raises(BuildFolderError, match="tier 'fast'"):
        up.upscale(half_flat(), tier="fast")


def _noise_band(amplitude: float, rows: int = 32) -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.clip(128 + amplitude * rng.uniform(-1, 1, (rows, 64, 3)), 0, 255).round().astype(np.uint8)


def _band_statistic(amplitude: float) -> float:
    return complexity_np(_noise_band(amplitude)[:16, :16].transpose(2, 0, 1).astype(np.float32) / np.float32(255))


def test_calibrated_selector_routes_like_the_plan(tiered_build: Path) -> None:
    """The runtime's NumPy routing agrees with quant.plan.Selector on torch's statistic."""
    plan = load_plan(tiered_build / "plan.json")
    assert plan.selector is not None and len(plan.tiers) == 3
    lo, hi = plan.selector.thresholds
    # The thresholds are percentiles of the calibration set's statistic, so the band that lands
    # in the middle tier is chosen from them: flat, middle and strong noise reach all three tiers.
    # Margins (x2 around the thresholds' geometric mean, x2 above the upper one) keep every tile of
    # a band, each a different noise draw, on the same side of the thresholds.
    middle = next(a for a in np.arange(1.0, 128.0, 0.5) if _band_statistic(a) > (lo * hi) ** 0.5)
    assert 2.0 * lo < _band_statistic(middle) < 0.5 * hi
    stripes = np.zeros((32, 64, 3), dtype=np.uint8)
    stripes[:, (np.arange(64) // 2) % 2 == 1] = 255  # 2 px black/white columns: statistic 218.75
    assert 2.0 * hi < 218.0
    img = np.concatenate([_noise_band(0.0), _noise_band(middle), stripes])
    chw = img.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    expected: dict[int, int] = {}
    for s in tile_grid(96, 64, 16, 4):
        tier = plan.selector.route(float(complexity(chw[:, s.y0 : s.y1, s.x0 : s.x1])[0]))
        expected[tier] = expected.get(tier, 0) + 1
    up = Upscaler.from_build(tiered_build, threads=1, tile=16, overlap=4)
    up.upscale(img)
    stats = up.last_stats
    assert stats is not None and stats.tiles_per_tier == dict(sorted(expected.items()))
    assert len(expected) == 3
    fabs = {t["index"]: t["fab"] for t in json.loads((tiered_build / "tiers.json").read_text())["tiers"]}
    assert stats.fab == pytest.approx(sum(n * fabs[k] for k, n in expected.items()) / stats.tiles)


def test_routing_and_output_are_deterministic(tiered_build: Path, textured: np.ndarray) -> None:
    # a flat band as well: the tier thresholds follow the calibration set, a flat tile stays in tier 0
    img = np.concatenate([textured, textured[::-1] // 4 + 100, np.full_like(textured, 120)])
    runs = []
    for threads, batch in ((1, 1), (2, 4), (1, 1)):
        up = Upscaler.from_build(tiered_build, threads=threads, tile=16, overlap=6, batch_size=batch)
        runs.append((up.upscale(img), up.last_stats))
    for out, stats in runs[1:]:
        assert stats.tiles_per_tier == runs[0][1].tiles_per_tier
        assert np.array_equal(out, runs[0][0])
    assert len(runs[0][1].tiles_per_tier) >= 2  # the image really mixes tiers
