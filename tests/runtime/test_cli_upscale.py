"""upscale_paths: files and folders, formats and bit depths, failures that leave nothing partial."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srdeploy.errors import BuildFolderError, DataError
from srdeploy.runtime.cli_upscale import upscale_paths


def write_png16_rgb(path: Path, arr: np.ndarray) -> None:
    """A 16-bit colour PNG (Pillow cannot write one)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


@pytest.fixture
def images(tmp_path: Path, textured: np.ndarray) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    rgb = Image.fromarray(textured)
    rgb.save(folder / "a_rgb.png")
    rgb.convert("L").save(folder / "b_gray.png")
    Image.fromarray(textured[..., 0].astype(np.uint16) * 257).save(folder / "c_gray16.png")
    rgb.convert("RGBA").save(folder / "d_rgba.png")
    rgb.save(folder / "e_photo.jpg", quality=90)
    write_png16_rgb(folder / "f_rgb16.png", textured.astype(np.uint16) * 257)
    (folder / "notes.txt").write_text("not an image; ignored by suffix")
    return folder


def test_folder(images: Path, tiny_build: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "nested"
    summary = upscale_paths(images, out, tiny_build, tile=16, tier="auto", profile="ort", threads=1, progress=True)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a_rgb.png", "b_gray.png", "c_gray16.png", "d_rgba.png", "e_photo.jpg", "f_rgb16.png"]
    assert summary.images == 6 and summary.tiles > 6 and summary.tiles_per_tier == {0: summary.tiles}
    modes = {n: Image.open(out / n).mode for n in names}
    assert modes == {
        "a_rgb.png": "RGB",
        "b_gray.png": "L",
        "c_gray16.png": "I;16",
        "d_rgba.png": "RGBA",
        "e_photo.jpg": "RGB",
        "f_rgb16.png": "RGB",
    }
    assert Image.open(out / "a_rgb.png").size == (104, 80)
    assert np.asarray(Image.open(out / "c_gray16.png")).max() > 255  # still 16-bit samples
    assert any("f_rgb16.png" in n and "8 bits" in n for n in summary.notes)
    assert "6 image(s)" in summary.describe()


def test_single_file(images: Path, tiny_build: Path, tmp_path: Path) -> None:
    dest = tmp_path / "big.png"
    summary = upscale_paths(
        images / "a_rgb.png", dest, tiny_build, tile=None, tier="0", profile="ort", threads=1, progress=False
    )
    assert summary.outputs == [dest] and Image.open(dest).size == (104, 80)
    (tmp_path / "into").mkdir()
    summary = upscale_paths(images / "a_rgb.png", tmp_path / "into", tiny_build, None, "auto", "ort", 1, False)
    assert summary.outputs == [tmp_path / "into" / "a_rgb.png"]


def test_unreadable_file_fails_before_writing(images: Path, tiny_build: Path, tmp_path: Path) -> None:
    (images / "g_broken.png").write_bytes((images / "a_rgb.png").read_bytes()[:200])
    (images / "h_fake.png").write_text("hello")
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"2 of 8 .*g_broken\.png.*h_fake\.png.*nothing was written"):
        upscale_paths(images, out, tiny_build, None, "auto", "ort", 1, False)
    assert not out.exists()


def test_decode_failure_mid_folder_leaves_only_complete_files(tiny_build: Path, tmp_path: Path, textured) -> None:
    """A truncated JPEG passes the header check and fails on decode: earlier outputs stay whole."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(textured).save(folder / "a.png")
    Image.fromarray(textured).save(folder / "b.jpg")
    data = (folder / "b.jpg").read_bytes()
    (folder / "b.jpg").write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"b\.jpg.*1 of 2 outputs were already written"):
        upscale_paths(folder, out, tiny_build, None, "auto", "ort", 1, False)
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]  # no temporary or partial files
    assert Image.open(out / "a.png").size == (104, 80)


def test_failed_write_leaves_no_partial_file(images: Path, tiny_build: Path, tmp_path: Path, monkeypatch) -> None:
    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        Path(str(fp)).write_bytes(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"cannot write .*a_rgb.png.*disk full"):
        upscale_paths(images / "a_rgb.png", f"{out}/", tiny_build, None, "auto", "ort", 1, False)
    assert list(out.iterdir()) == []


def test_bad_arguments(images: Path, tiny_build: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is the input folder"):
        upscale_paths(images, images, tiny_build, None, "auto", "ort", 1, False)
    with pytest.raises(DataError, match="input not found"):
        upscale_paths(tmp_path / "missing.png", tmp_path / "o.png", tiny_build, None, "auto", "ort", 1, False)
    with pytest.raises(DataError, match=r"transparency.*\.jpg"):
        upscale_paths(images / "d_rgba.png", tmp_path / "o.jpg", tiny_build, None, "auto", "ort", 1, False)
    with pytest.raises(BuildFolderError, match="tier '7'"):
        upscale_paths(images / "a_rgb.png", tmp_path / "o.png", tiny_build, None, "7", "ort", 1, False)
    with pytest.raises(BuildFolderError, match="not an srdeploy build folder"):
        upscale_paths(images / "a_rgb.png", tmp_path / "o.png", images, None, "auto", "ort", 1, False)
    assert not (tmp_path / "o.png").exists()
