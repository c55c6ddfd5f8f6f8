"""Upscaler on tiny real builds: tiling exactness, type round trips, routing, errors, memory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srdeploy.errors import BackendUnavailable, BuildFolderError, DataError
from srdeploy.runtime.upscaler import Upscaler

from .helpers import TINY_RF, WIDE_RF, make_build, make_checkpoint


def f32(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / 255.0


# ----------------------------------------------------------------------------- tiling exactness


@pytest.mark.parametrize("model", ["build", "fp32.onnx"])
@pytest.mark.parametrize("tile,overlap", [(16, TINY_RF), (24, TINY_RF + 2), (13, 16)])
def test_tiled_equals_whole_image(tiny_build: Path, textured: np.ndarray, model: str, tile: int, overlap: int) -> None:
    path = tiny_build if model == "build" else tiny_build / model
    whole = Upscaler(path, threads=1).upscale(f32(textured))
    up = Upscaler(path, threads=1, tile=tile, overlap=overlap, batch_size=3)
    assert np.array_equal(up.upscale(f32(textured)), whole)
    assert up.last_stats is not None and up.last_stats.tiles > 1 and up.last_stats.tile == tile


def test_too_little_overlap_shows_seams_and_shrinks_with_overlap(wide_build: Path, textured: np.ndarray) -> None:
    """Proves the equality test can fail: the wide model (radius 12) needs overlap >= 12."""
    whole = Upscaler(wide_build, threads=1).upscale(f32(textured))
    err = {}
    for overlap in (0, 6, WIDE_RF - 1, WIDE_RF):
        tiled = Upscaler(wide_build, threads=1, tile=16, overlap=overlap).upscale(f32(textured))
        err[overlap] = np.abs(tiled - whole)
    assert err[0].max() > 0.1  # a visible seam
    corner = err[0][:8, :8]  # LR rows/cols 0-3: >= 13 px from every seam (16, 32, ...)
    across = err[0][28:36, :8]  # LR rows 14-17, cols 0-3: straddle the row seam at 16 only
    assert corner.max() == 0 and across.max() > 0.1  # errors sit at the seams
    assert err[0].mean() > err[6].mean() > err[WIDE_RF - 1].mean()
    assert err[WIDE_RF - 1].mean() < 1e-3  # small tolerance just below the receptive field
    assert err[WIDE_RF].max() == 0.0


# ----------------------------------------------------------------------------- types and layouts


@pytest.fixture(scope="module")
def up(tiny_build: Path) -> Upscaler:
    return Upscaler.from_build(tiny_build, threads=1)


def test_numpy_round_trips(up: Upscaler, textured: np.ndarray) -> None:
    h, w = textured.shape[:2]
    ref = up.upscale(textured)
    assert ref.shape == (2 * h, 2 * w, 3) and ref.dtype == np.uint8
    as16 = up.upscale(textured.astype(np.uint16) * 257)
    assert as16.dtype == np.uint16 and np.abs(as16 / 257.0 - ref).max() <= 1.0
    for dtype in (np.float32, np.float64):
        out = up.upscale(f32(textured).astype(dtype))
        assert out.dtype == dtype and out.min() >= 0 and out.max() <= 1
        assert np.abs(out * 255 - ref).max() <= 0.51
    gray = textured[..., 1]
    g = up.upscale(gray)
    assert g.shape == (2 * h, 2 * w) and g.dtype == np.uint8
    rgb_of_gray = up.upscale(np.repeat(gray[..., None], 3, axis=2)).astype(np.float32)
    assert np.abs(g - rgb_of_gray @ np.array([0.299, 0.587, 0.114])).max() <= 1.0
    assert up.upscale(gray[..., None]).shape == (2 * h, 2 * w, 1)


def test_rgba_alpha_is_bicubic_and_rgb_unchanged(up: Upscaler, textured: np.ndarray) -> None:
    h, w = textured.shape[:2]
    alpha = np.tile(np.linspace(0, 255, w, dtype=np.float32).round().astype(np.uint8), (h, 1))
    out = up.upscale(np.dstack([textured, alpha]))
    assert out.shape == (2 * h, 2 * w, 4) and out.dtype == np.uint8
    assert np.array_equal(out[..., :3], up.upscale(textured))
    expected = np.asarray(Image.fromarray(alpha).resize((2 * w, 2 * h), Image.Resampling.BICUBIC))
    assert np.abs(out[..., 3].astype(int) - expected).max() <= 1


def test_pil_modes_round_trip(up: Upscaler, textured: np.ndarray) -> None:
    rgb = Image.fromarray(textured)
    for mode in ("L", "RGB", "RGBA"):
        out = up.upscale(rgb.convert(mode))
        assert out.mode == mode and out.size == (2 * rgb.width, 2 * rgb.height)
    g16 = Image.fromarray(textured[..., 0].astype(np.uint16) * 257)
    assert g16.mode == "I;16"
    out16 = up.upscale(g16)
    assert out16.mode == "I;16" and np.asarray(out16).max() > 255  # 16-bit samples survive
    with pytest.raises(DataError, match=r"mode 'P'.*convert"):
        up.upscale(rgb.convert("P"))


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 37, 3), (29, 1), (2, 3, 4)])
def test_tiny_images(up: Upscaler, shape: tuple[int, ...]) -> None:
    img = np.full(shape, 100, dtype=np.uint8)
    assert up.upscale(img).shape == (2 * shape[0], 2 * shape[1], *shape[2:])


def test_auto_tiling_above_pixel_budget(tiny_build: Path, textured: np.ndarray) -> None:
    small = Upscaler(tiny_build, threads=1, max_batch_pixels=40 * 40, overlap=TINY_RF)
    out = small.upscale(textured)  # 40x52 > 1600 pixels -> tiled automatically
    assert small.last_stats is not None and small.last_stats.tile is not None and small.last_stats.tiles > 1
    assert np.array_equal(out, Upscaler(tiny_build, threads=1).upscale(textured))


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "image,match",
    [
        (np.zeros((8, 8, 3), dtype=np.int64), "dtype int64.*uint8"),
        (np.zeros((8, 8, 3), dtype=bool), "dtype bool"),
        (np.zeros((8, 8, 3), dtype=np.float16), "dtype float16.*float32"),
        (np.zeros((8, 8, 2), dtype=np.uint8), r"shape \(8, 8, 2\).*HxWx3"),
        (np.zeros((1, 8, 8, 3), dtype=np.uint8), r"shape \(1, 8, 8, 3\).*one image at a time"),
        (np.zeros((3, 8, 9), dtype=np.uint8), "channels-first.*transpose"),
        (np.full((8, 8, 3), np.nan, dtype=np.float32), "192 NaN/Inf.*nan_to_num"),
        (np.array([[[0.5, np.inf, 0.2]]], dtype=np.float64), "1 NaN/Inf"),
        (np.full((8, 8, 3), 200.0, dtype=np.float32), r"\[200, 200\].*divide by 255"),
        (np.zeros((0, 8, 3), dtype=np.uint8), "zero size.*at least 1x1"),
        ([[1, 2], [3, 4]], "cannot upscale a list"),
    ],
)
def test_bad_input_raises_data_error(up: Upscaler, image: object, match: str) -> None:
    with pytest.raises(DataError, match=match):
        up.upscale(image)


def test_max_megapixels(tiny_build: Path) -> None:
    up = Upscaler(tiny_build, threads=1, max_megapixels=0.001)
    with pytest.raises(DataError, match=r"max_megapixels=0.001.*larger max_megapixels"):
        up.upscale(np.zeros((40, 40, 3), dtype=np.uint8))


def test_build_folder_checks(tiny_build: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_build, copy)
    (copy / "ort" / "model.onnx").write_bytes((copy / "ort" / "model.onnx").read_bytes()[:-10])
    with pytest.raises(BuildFolderError, match="modified after the build"):
        Upscaler.from_build(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(BuildFolderError, match=r"build format 99.*rebuild"):
        Upscaler.from_build(copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(BuildFolderError, match="not an srdeploy build folder"):
        Upscaler.from_build(copy)
    with pytest.raises(BuildFolderError, match="unknown profile"):
        Upscaler.from_build(tiny_build, profile="tflite")
    with pytest.raises(BuildFolderError, match="not found"):
        Upscaler.from_build(tmp_path / "nope")


def test_providers(tiny_build: Path) -> None:
    import onnxruntime as ort

    assert "CPUExecutionProvider" in Upscaler(tiny_build, providers=["auto"], threads=1).providers
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(BackendUnavailable, match=r"CUDAExecutionProvider.*onnxruntime-gpu"):
            Upscaler(tiny_build, providers=["CUDAExecutionProvider"])


# ----------------------------------------------------------------------------- memory


_MEMCHECK = """
import json, resource, sys
import numpy as np
from srdeploy.runtime.upscaler import Upscaler
up = Upscaler.from_build(sys.argv[1], threads=2)
img = np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
out = up.upscale(img)
# VmHWM is this process's own peak; ru_maxrss also carries the forking parent's RSS across exec on Linux
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
peak = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(peak_mb=peak, shape=list(out.shape), tiles=up.last_stats.tiles)))
"""


@pytest.mark.slow
def test_large_image_memory(tmp_path: Path) -> None:
    """A 4000x3000 8-bit image at x4 stays under 2 GB peak RSS (output alone is 576 MB).

    Run in a fresh process so the peak is this call's. The tiny model's activations are small;
    the EDSR-baseline-width figure is measured the same way (see upscaler.py's docstring).
    """
    build = make_build(tmp_path, "x4", make_checkpoint(tmp_path / "x4.safetensors", 1, scale=4))
    proc = subprocess.run(
        [sys.executable, "-c", _MEMCHECK, str(build)], capture_output=True, text=True, check=True, timeout=1800
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["shape"] == [12000, 16000, 3] and result["tiles"] > 1
    assert result["peak_mb"] < 2048, result
