"""Battery, image class: bad calibration, validation and upscale images fail in one line, exit 2,
before anything is written, and the build folder and the user's files stay as they were."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from clitest import assert_kept, assert_one_error, png_header_only, run_cli, snapshot
from PIL import Image


def _copy_good(ws: Path, folder: str) -> Path:
    (ws / folder).mkdir()
    for p in (ws / "calib").iterdir():
        (ws / folder / p.name).write_bytes(p.read_bytes())
    return ws / folder


def _truncated(ws: Path) -> Path:
    folder = _copy_good(ws, "imgs")
    data = (folder / "img0.png").read_bytes()
    (folder / "img0.png").write_bytes(data[: len(data) // 2])
    return folder


def _text(ws: Path) -> Path:
    folder = _copy_good(ws, "imgs")
    (folder / "readme.png").write_text("not a picture")
    return folder


def _zero_bytes(ws: Path) -> Path:
    folder = _copy_good(ws, "imgs")
    (folder / "zero.png").write_bytes(b"")
    return folder


def _bomb(ws: Path) -> Path:
    folder = _copy_good(ws, "imgs")
    png_header_only(folder / "huge.png", 20000, 20000)
    return folder


def _bomb_warning_size(ws: Path) -> Path:
    folder = _copy_good(ws, "imgs")
    png_header_only(folder / "large.png", 10000, 10000)  # above Pillow's warning limit, below its error
    return folder


def _tiny_images(ws: Path) -> Path:
    (ws / "imgs").mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(ws / "imgs" / "small.png")
    return ws / "imgs"


def _empty(ws: Path) -> Path:
    (ws / "imgs").mkdir()
    (ws / "imgs" / "notes.txt").write_text("no images here")
    return ws / "imgs"


FOLDERS: dict[str, tuple[Callable[[Path], Path], list[str]]] = {
    "truncated png": (_truncated, ["cannot read image", "img0.png"]),
    "text named .png": (_text, ["cannot read image", "readme.png"]),
    "zero-byte png": (_zero_bytes, ["cannot read image", "zero.png"]),
    "decompression bomb": (_bomb, ["huge.png", "too large to read safely"]),
    "bomb below the hard limit": (_bomb_warning_size, ["large.png", "too large to read safely"]),
    "too small for the patches": (_tiny_images, ["smaller than one 16x16 LR patch", "set calib.patch_size"]),
    "no images": (_empty, ["no images in"]),
}


@pytest.mark.parametrize("case", sorted(FOLDERS))
def test_bad_calibration_folder(ws: Path, case: str) -> None:
    make, fragments = FOLDERS[case]
    folder = make(ws)
    before = snapshot(ws)
    res = run_cli("build", "-r", "recipe.yaml", "--no-validate", "--set", f"calib.folder={folder.name}", cwd=ws)
    assert_one_error(res, 2, *fragments)
    assert_kept(before, ws)
    assert sorted(p.name for p in (ws / "builds").iterdir()) == []  # no build, no partial, no lock


def test_missing_calibration_folder(ws: Path) -> None:
    before = snapshot(ws)
    res = run_cli("build", "-r", "recipe.yaml", "--set", "calib.folder=nowhere", cwd=ws)
    assert_one_error(res, 2, "'nowhere' is neither an image folder nor a named set")
    assert_kept(before, ws)


@pytest.mark.parametrize("case", ["truncated png", "decompression bomb"])
def test_bad_validation_images(ws: Path, build_copy: Path, case: str) -> None:
    folder = FOLDERS[case][0](ws)
    before, build_before = snapshot(ws), snapshot(build_copy)
    res = run_cli("validate", str(build_copy), "--dataset", str(folder), cwd=ws)
    assert_one_error(res, 2, *FOLDERS[case][1])
    assert_kept(before, ws)
    assert snapshot(build_copy) == build_before
    assert sorted(p.name for p in build_copy.parent.iterdir()) == ["tiny"]  # no report folder


def _upscale(ws: Path, build: Path, *args: str) -> tuple[dict[str, str], object]:
    before = snapshot(ws)
    return before, run_cli("upscale", *args, "--build", str(build), cwd=ws)


def test_upscale_bomb_names_the_limit(ws: Path, build_copy: Path) -> None:
    png_header_only(ws / "huge.png", 20000, 20000)
    before, res = _upscale(ws, build_copy, "huge.png", "big.png")
    assert_one_error(res, 2, "huge.png", "25 MP input limit", "--max-megapixels", "nothing was written")
    assert_kept(before, ws)
    assert not (ws / "big.png").exists()


def test_upscale_bad_file_in_folder_writes_nothing(ws: Path, build_copy: Path) -> None:
    folder = _truncated(ws)
    before, res = _upscale(ws, build_copy, str(folder), "out")
    assert_one_error(res, 2, "1 of 2 input image(s) unusable", "img0.png", "nothing was written")
    assert_kept(before, ws)
    assert not (ws / "out").exists()


@pytest.mark.parametrize("limit", ["0", "-3", "nan", "inf"])
def test_upscale_bad_megapixel_limit(ws: Path, build_copy: Path, limit: str) -> None:
    before, res = _upscale(ws, build_copy, "calib/img0.png", "big.png", "--max-megapixels", limit)
    assert_one_error(res, 2, "--max-megapixels", "must be a number > 0")
    assert_kept(before, ws)
    assert not (ws / "big.png").exists()


def test_upscale_transparency_to_jpeg(ws: Path, build_copy: Path) -> None:
    Image.new("RGBA", (24, 20), (10, 20, 30, 128)).save(ws / "alpha.png")
    before, res = _upscale(ws, build_copy, "alpha.png", "big.jpg")
    assert_one_error(res, 2, "alpha.png", "transparency", ".jpg cannot store")
    assert_kept(before, ws)
    assert not (ws / "big.jpg").exists()


def test_upscale_float_tiff(ws: Path, build_copy: Path) -> None:
    Image.fromarray(np.full((20, 24), 0.5, np.float32), mode="F").save(ws / "float.tif")
    before, res = _upscale(ws, build_copy, "float.tif", "big.tif")
    assert_one_error(res, 2, "float.tif", "32-bit float images are not supported", "nothing was written")
    assert_kept(before, ws)
    assert not (ws / "big.tif").exists()


def test_upscale_missing_input(ws: Path, build_copy: Path) -> None:
    before, res = _upscale(ws, build_copy, "nothing.png", "big.png")
    assert_one_error(res, 2, "input not found", "nothing.png")
    assert_kept(before, ws)
