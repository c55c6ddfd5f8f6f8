from __future__ import annotations

import numpy as np
import pytest
import torch

from srdeploy.calib.complexity import complexity_torch
from srdeploy.data.coverage import calibration_warnings, patch_complexity, patch_statistics
from srdeploy.data.sets import lr_patches, patch_source_count
from srdeploy.errors import DataError
from srdeploy.runtime.routing import complexity_np

# A phrase that only the warning of that kind contains.
KINDS = {
    "flat_colour": "same flat colour",
    "few_patches": "calibration patches:",
    "few_images": "distinct image",
    "dynamic_range": "dynamic range",
    "dark": "no dark regions",
    "bright": "no bright or saturated",
    "edges": "no edges or texture",
    "smooth": "no smooth regions",
    "grayscale": "grayscale only",
}
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def kinds(warnings: list[str]) -> set[str]:
    return {k for k, phrase in KINDS.items() if any(phrase in w for w in warnings)}


@pytest.fixture(scope="module")
def train_patches() -> np.ndarray:
    return lr_patches("train", 4, 48, 64, seed=1)


def test_bundled_train_set_gives_no_warning(train_patches: np.ndarray) -> None:
    assert calibration_warnings(train_patches, patch_source_count("train", 4, 48)) == []


@pytest.mark.slow
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bundled_train_set_gives_no_warning_across_scales_and_seeds(scale: int) -> None:
    for seed in (2, 3):
        patches = lr_patches("train", scale, 48, 64, seed)
        assert calibration_warnings(patches, patch_source_count("train", scale, 48)) == []


def test_single_flat_colour_is_named_alone() -> None:
    patches = np.full((64, 3, 48, 48), 0.5, dtype=np.float32)
    warnings = calibration_warnings(patches, source_images=20)
    assert kinds(warnings) == {"flat_colour"}
    assert "[128, 128, 128]" in warnings[0]


def test_grayscale_copy_of_train_warns_only_grayscale(train_patches: np.ndarray) -> None:
    gray = np.tensordot(train_patches, LUMA, axes=([1], [0]))[:, None].repeat(3, axis=1)
    assert kinds(calibration_warnings(gray, source_images=20)) == {"grayscale"}


def test_squeezed_range_warns_dynamic_range_dark_and_bright(train_patches: np.ndarray) -> None:
    squeezed = 0.4 + 0.2 * train_patches
    found = kinds(calibration_warnings(squeezed, source_images=20))
    assert {"dynamic_range", "dark", "bright"} <= found
    assert "flat_colour" not in found and "grayscale" not in found


def test_lifted_shadows_warn_only_no_dark(train_patches: np.ndarray) -> None:
    lifted = 0.3 + 0.7 * train_patches
    assert kinds(calibration_warnings(lifted, source_images=20)) == {"dark"}


def test_dimmed_highlights_warn_only_no_bright(train_patches: np.ndarray) -> None:
    dimmed = 0.75 * train_patches
    assert kinds(calibration_warnings(dimmed, source_images=20)) == {"bright"}


def test_blurred_set_warns_no_edges(train_patches: np.ndarray) -> None:
    blurred = torch.nn.functional.avg_pool2d(torch.from_numpy(train_patches), 8, stride=1, padding=0)
    blurred = torch.nn.functional.interpolate(blurred, size=48, mode="bilinear", align_corners=False).numpy()
    found = kinds(calibration_warnings(blurred, source_images=20))
    assert "edges" in found and "smooth" not in found


def test_texture_everywhere_warns_no_smooth(train_patches: np.ndarray) -> None:
    grain = np.random.default_rng(0).random(train_patches.shape, dtype=np.float32)  # sensor-like grain
    busy = np.clip(0.85 * train_patches + 0.15 * grain, 0.0, 1.0)
    found = kinds(calibration_warnings(busy, source_images=20))
    assert "smooth" in found and "edges" not in found


def test_too_few_patches_and_images(train_patches: np.ndarray) -> None:
    assert kinds(calibration_warnings(train_patches[:16], source_images=20)) == {"few_patches"}
    assert kinds(calibration_warnings(train_patches, source_images=3)) == {"few_images"}


def test_every_warning_is_one_sentence_with_a_fix(train_patches: np.ndarray) -> None:
    bad = np.full((4, 3, 48, 48), 0.2, dtype=np.float32)
    warnings = calibration_warnings(bad, source_images=1) + calibration_warnings(0.4 + 0.2 * train_patches, 20)
    assert len(warnings) >= 5
    for w in warnings:
        assert "\n" not in w and w.endswith(".") and w.count(". ") == 0
        assert any(verb in w for verb in ("add ", "use ", "raise ", "calibrate on"))


def test_patch_complexity_is_the_selector_statistic(train_patches: np.ndarray) -> None:
    sample = train_patches[:8]
    ours = patch_complexity(sample)
    assert np.allclose(ours, [complexity_np(p) for p in sample], rtol=1e-5)
    assert np.allclose(ours, complexity_torch(torch.from_numpy(sample)).numpy(), rtol=1e-4)


def test_statistics_of_known_patches() -> None:
    half = np.zeros((2, 3, 8, 8), dtype=np.float32)
    half[:, :, :, 4:] = 1.0  # black | white: one vertical edge
    s = patch_statistics(half)
    assert s.dark_fraction == pytest.approx(0.5) and s.bright_fraction == pytest.approx(0.5)
    assert s.luma_p001 == pytest.approx(0.0) and s.luma_p999 == pytest.approx(1.0)
    assert s.colourfulness == pytest.approx(0.0)
    # |gx| = 0.5 on the two columns beside the edge, gy = 0: 1000 * (2*8*0.5) / (2*64)
    assert s.complexity_p90 == pytest.approx(62.5)


def test_bad_shape_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"\(N, 3, H, W\)"):
        patch_statistics(np.zeros((4, 48, 48), dtype=np.float32))
