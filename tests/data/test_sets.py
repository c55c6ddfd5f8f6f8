from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srdeploy.data.categories import CATEGORIES, CATEGORY_FILE, FORMAT, UNCATEGORISED
from srdeploy.data.sets import data_root, image_categories, lr_patches, patch_source_count
from srdeploy.errors import DataError


def _images(folder: Path, sizes: dict[str, tuple[int, int]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for stem, (w, h) in sizes.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{stem}.png")
    return folder


def test_named_eval_set_categories_match_its_file() -> None:
    cats = image_categories("eval")
    on_disk = json.loads((data_root() / "eval" / CATEGORY_FILE).read_text())["categories"]
    assert cats == on_disk
    assert {p.stem for p in (data_root() / "eval").glob("*.png")} == set(cats)
    assert cats["kde_grey"] == "monochrome" and cats["ski_astronaut"] == "face"


def test_plain_folder_is_uncategorised(tmp_path: Path) -> None:
    folder = _images(tmp_path / "mine", {"a": (24, 24), "b": (36, 24)})
    assert image_categories(folder) == {"a": UNCATEGORISED, "b": UNCATEGORISED}


def test_partial_category_file_tags_named_images_only(tmp_path: Path) -> None:
    folder = _images(tmp_path / "mine", {"doc": (24, 24), "holiday": (24, 24)})
    (folder / CATEGORY_FILE).write_text(json.dumps({"format": FORMAT, "categories": {"doc": "text", "gone": "flat"}}))
    assert image_categories(str(folder)) == {"doc": "text", "holiday": UNCATEGORISED}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read"),
        (json.dumps({"categories": {"a": "text"}}), "is not a 'srdeploy-categories/1' file"),
        (json.dumps({"format": FORMAT, "categories": {"a": "cartoons"}}), "unknown categories cartoons"),
        (json.dumps({"format": FORMAT, "categories": ["a"]}), "must map image stems"),
    ],
)
def test_bad_category_file_is_a_data_error(tmp_path: Path, content: str, message: str) -> None:
    folder = _images(tmp_path / "mine", {"a": (24, 24)})
    (folder / CATEGORY_FILE).write_text(content)
    with pytest.raises(DataError, match=message):
        image_categories(folder)


def test_unknown_category_error_lists_the_vocabulary(tmp_path: Path) -> None:
    folder = _images(tmp_path / "mine", {"a": (24, 24)})
    (folder / CATEGORY_FILE).write_text(json.dumps({"format": FORMAT, "categories": {"a": "cartoons"}}))
    with pytest.raises(DataError) as err:
        image_categories(folder)
    assert all(c in err.value.hint for c in CATEGORIES)


def test_images_smaller_than_the_patch_raise_a_clear_error(tmp_path: Path) -> None:
    folder = _images(tmp_path / "small", {"a": (120, 96), "b": (160, 100)})
    with pytest.raises(DataError) as err:
        lr_patches(folder, scale=4, patch=48, count=8, seed=0)
    text = str(err.value)
    assert "every image" in text and "192x192" in text
    assert "'b'" in text and "160x100" in text  # the largest image, by its shorter side
    assert "shorter side is at least 192 px" in text and "calib.patch_size to 25 or less" in text


def test_tiny_images_do_not_suggest_an_impossible_patch_size(tmp_path: Path) -> None:
    folder = _images(tmp_path / "tiny", {"a": (24, 24)})
    with pytest.raises(DataError) as err:
        lr_patches(folder, scale=4, patch=48, count=8, seed=0)
    assert "patch_size" not in str(err.value)


def test_patch_source_count_counts_only_large_enough_images(tmp_path: Path) -> None:
    folder = _images(tmp_path / "mixed", {"big": (200, 196), "small": (120, 96), "big2": (240, 240)})
    assert patch_source_count(folder, scale=4, patch=48) == 2
    patches = lr_patches(folder, scale=4, patch=48, count=6, seed=0)
    assert patches.shape == (6, 3, 48, 48)
