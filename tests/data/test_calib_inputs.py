"""The calibration inputs a recipe names (srdeploy/data/calib_inputs.py): bicubic HR images, LR images as they
are, or tensors; and the recipe rules that keep the HR-only steps away from the last two."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srdeploy.data.calib_inputs import calib_patches, source_count
from srdeploy.data.sets import lr_patches
from srdeploy.errors import DataError, RecipeError
from srdeploy.recipe import recipe_from_dict
from srdeploy.recipe_calib import CalibSection


def _images(folder: Path, sizes: list[tuple[int, int]]) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


def _is_crop_of(patch: np.ndarray, sources: list[np.ndarray]) -> bool:
    p = patch.shape[-1]
    for src in sources:
        for y in range(src.shape[1] - p + 1):
            for x in range(src.shape[2] - p + 1):
                if np.array_equal(src[:, y : y + p, x : x + p], patch):
                    return True
    return False


def test_bicubic_is_todays_lr_patches(tmp_path: Path) -> None:
    folder = _images(tmp_path / "hr", [(40, 48), (44, 40)])
    got = calib_patches(CalibSection(folder=str(folder)), 2, 8, 5, seed=3)
    assert np.array_equal(got, lr_patches(folder, 2, 8, 5, 3))


def test_degradation_none_cuts_the_images_as_they_are(tmp_path: Path) -> None:
    folder = _images(tmp_path / "lr", [(12, 14), (11, 13)])
    calib = CalibSection(folder=str(folder), degradation="none")
    got = calib_patches(calib, 4, 10, 6, seed=0)
    sources = [np.asarray(Image.open(p), np.float32).transpose(2, 0, 1) / 255 for p in sorted(folder.iterdir())]
    assert got.shape == (6, 3, 10, 10)
    assert all(_is_crop_of(p, sources) for p in got)  # no downscale: 12x14 at x4 would give no 10x10 patch
    assert np.array_equal(got, calib_patches(calib, 4, 10, 6, seed=0))
    assert not np.array_equal(got, calib_patches(calib, 4, 10, 6, seed=1))


def test_degradation_none_counts_only_large_enough_images(tmp_path: Path) -> None:
    folder = _images(tmp_path / "lr", [(12, 14), (9, 20), (16, 16)])
    assert source_count(CalibSection(folder=str(folder), degradation="none"), 4, 10) == 2


def test_degradation_none_too_small_names_the_key(tmp_path: Path) -> None:
    folder = _images(tmp_path / "lr", [(12, 14)])
    with pytest.raises(DataError, match=re.escape("set calib.patch_size to 12 or less")):
        calib_patches(CalibSection(folder=str(folder), degradation="none"), 4, 16, 2, seed=0)


def test_tensors_of_the_patch_size_are_used_as_is(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((5, 3, 8, 8), dtype=np.float32)
    np.save(tmp_path / "c.npy", x)
    calib = CalibSection(tensors=str(tmp_path / "c.npy"))
    assert np.array_equal(calib_patches(calib, 2, 8, 3, seed=0), x[:3])
    assert np.array_equal(calib_patches(calib, 2, 8, 64, seed=0), x)  # never more than the file holds
    assert source_count(calib, 2, 8) == 5


def test_larger_tensors_are_cropped(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((2, 3, 12, 16), dtype=np.float32)
    np.save(tmp_path / "c.npy", x)
    got = calib_patches(CalibSection(tensors=str(tmp_path / "c.npy")), 2, 8, 7, seed=0)
    assert got.shape == (7, 3, 8, 8) and all(_is_crop_of(p, list(x)) for p in got)


def test_smaller_tensors_name_the_patch_key(tmp_path: Path) -> None:
    np.save(tmp_path / "c.npy", np.zeros((2, 3, 12, 16), np.float32))
    with pytest.raises(DataError, match=re.escape("set quant.refine.patch_size to 12 or less")):
        calib_patches(CalibSection(tensors=str(tmp_path / "c.npy")), 2, 16, 4, 0, "quant.refine.patch_size")


def _recipe(calib: dict, **quant: object) -> None:
    recipe_from_dict({"name": "t", "model": {"path": "x.pt"}, "calib": calib, "quant": quant})


@pytest.mark.parametrize(
    ("calib", "fragment"),
    [
        ({"tensors": "c.npy", "folder": "f"}, "set calib.tensors or calib.folder, not both"),
        ({"tensors": "c.npy", "set": "train"}, "set calib.tensors or calib.set, not both"),
        ({"tensors": "c.npy", "degradation": "bicubic"}, "model inputs (LR) already"),
        ({"degradation": "lanczos"}, "calib.degradation"),
    ],
)
def test_recipe_refuses_mixed_sources(calib: dict, fragment: str) -> None:
    with pytest.raises(RecipeError, match=re.escape(fragment)):
        _recipe(calib)


@pytest.mark.parametrize("calib", [{"degradation": "none"}, {"tensors": "c.npy"}])
def test_float_tier_without_hr_is_refused(calib: dict) -> None:
    _recipe(calib)  # fine without the float tier
    with pytest.raises(RecipeError, match=re.escape("quant.float_tier.max_drop_db > 0 needs HR images")):
        _recipe(calib, float_tier={"max_drop_db": 0.1})


@pytest.mark.parametrize("calib", [{"degradation": "none"}, {"tensors": "c.npy"}])
def test_drop_refinement_loss_without_hr_is_refused(calib: dict) -> None:
    _recipe(calib, refine={"steps": 4, "loss": "psnr"})  # label-free losses need no HR
    _recipe(calib, refine={"steps": 0, "loss": "drop"})  # no refinement, nothing to refuse
    with pytest.raises(RecipeError, match=re.escape("quant.refine.loss: drop weighs each patch by fp32's error")):
        _recipe(calib, refine={"steps": 4, "loss": "drop"})


def test_dumped_tensors_recipe_loads_again() -> None:
    r = recipe_from_dict({"name": "t", "model": {"path": "x.pt"}, "calib": {"tensors": "c.npy"}})
    assert recipe_from_dict(r.to_dict()) == r
    assert not r.calib.has_hr and r.calib.source == "c.npy"
