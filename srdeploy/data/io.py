"""Image reading and writing with explicit checks. Arrays are float32 HxWx3 RGB in [0, 1]."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from srdeploy.errors import DataError
from srdeploy.fsutil import atomic_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as float32 RGB in [0, 1]. Grayscale is replicated, alpha dropped,
    16-bit scaled by 65535."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"image not found: {path}", "check the path")
    try:
        with warnings.catch_warnings():
            # Above MAX_IMAGE_PIXELS Pillow only warns (and raises at twice that): refuse both,
            # calibration and validation never need an image that large.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                return pil_to_array(img, str(path))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(
            f"image {path} is too large to read safely ({exc})", "downscale it, or remove it from the folder"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot read image {path}: {exc}", "the file is truncated, corrupt, or not an image") from exc


def pil_to_array(img: object, origin: str = "image") -> np.ndarray:
    from PIL import Image

    assert isinstance(img, Image.Image)
    if img.width == 0 or img.height == 0:
        raise DataError(f"{origin} has zero size ({img.width}x{img.height})", "use a non-empty image")
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float32) / 65535.0
        return np.repeat(np.clip(arr, 0, 1)[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        return np.repeat(np.clip(arr, 0, 1)[..., None], 3, axis=2)
    rgb = img.convert("RGB")
    return np.asarray(rgb, dtype=np.float32) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write float [0,1] or uint8/uint16 HxWx{1,3,4} atomically (format from the suffix)."""
    from PIL import Image

    path = Path(path)
    arr = np.asarray(image)
    if arr.dtype != np.uint8 and arr.dtype != np.uint16:
        arr = to_uint8(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.dtype == np.uint16:
        if arr.ndim != 2:
            # Pillow writes 16-bit only for single-channel images; keep colour at 8 bit.
            arr = (arr.astype(np.float32) / 257.0).round().astype(np.uint8)
            img = Image.fromarray(arr)
        else:
            img = Image.fromarray(arr, mode="I;16")
    else:
        img = Image.fromarray(arr)
    with atomic_file(path) as tmp:
        img.save(tmp)
    return path


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder not found: {folder}", "pass an existing folder or a named set (train, eval)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(
            f"no images in {folder} (looked for {', '.join(IMAGE_SUFFIXES)})", "point to a folder of PNG/JPEG images"
        )
    return files
