"""Turning a source file into an HR image: colour handling, size policy, deterministic PNG bytes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps

MULTIPLE = 12  # LR sizes exact for x2, x3 and x4

# A PNG is only resized when its long side exceeds MAX_LONG; a JPEG is always reduced by at least
# JPEG_MIN_FACTOR (so its block artefacts vanish) and never above TARGET_LONG.
TARGET_LONG = {"train": 960, "eval": 480}
MAX_LONG = {"train": 1008, "eval": 528}
JPEG_MIN_FACTOR = 2


def to_srgb(im: Image.Image, steps: list[str]) -> Image.Image:
    """Convert an embedded non-sRGB ICC profile (e.g. Adobe RGB) to sRGB; sRGB is kept as is."""
    icc = im.info.get("icc_profile")
    if not icc or im.mode not in ("RGB", "RGBA"):
        return im
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    desc = ImageCms.getProfileDescription(profile).strip()
    if "srgb" in desc.lower():
        return im
    srgb = ImageCms.createProfile("sRGB")
    out = ImageCms.profileToProfile(
        im, profile, srgb, renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode="RGB"
    )
    assert out is not None
    steps.append(f"ICC {desc} -> sRGB")
    return out


def _flatten(im: Image.Image, steps: list[str]) -> Image.Image:
    """Alpha onto white: what a viewer shows for a transparent UI figure or drawing."""
    alpha = im.getchannel("A")
    base_mode = "L" if im.mode == "LA" else "RGB"
    background = Image.new(base_mode, im.size, 255 if base_mode == "L" else (255, 255, 255))
    background.paste(im.convert(base_mode), mask=alpha)
    steps.append(f"flatten alpha onto white ({int((np.asarray(alpha) < 255).sum())} px not opaque)")
    return background


def load(path: Path, steps: list[str]) -> Image.Image:
    """Open an image as RGB, or as 8-bit gray when the source has no colour (EXIF orientation applied)."""
    with Image.open(path) as src:
        src.load()
        im = ImageOps.exif_transpose(src)
        im.info = dict(src.info)
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        steps.append("palette -> RGB")
    if im.mode not in ("RGB", "RGBA", "L", "LA"):
        raise ValueError(f"{path.name}: unsupported mode {im.mode}")
    im = to_srgb(im, steps)
    if im.mode in ("RGBA", "LA"):
        im = _flatten(im, steps)
    if im.mode == "RGB":
        arr = np.asarray(im, dtype=np.int16)
        if not np.abs(arr[..., 0] - arr[..., 1]).any() and not np.abs(arr[..., 2] - arr[..., 1]).any():
            steps.append("R=G=B source stored as 8-bit gray")
            im = im.convert("L")
    return im


def crop_border(im: Image.Image, border: int, steps: list[str]) -> Image.Image:
    if border <= 0:
        return im
    w, h = im.size
    steps.append(f"remove {border} px frame {w}x{h} -> {w - 2 * border}x{h - 2 * border}")
    return im.crop((border, border, w - border, h - border))


def scaled_size(size: tuple[int, int], split: str, is_jpeg: bool, target: int = 0) -> tuple[int, int]:
    """Output size before the /12 crop, following the per-split size policy (or a smaller ``target``)."""
    w, h = size
    long_side = max(w, h)
    limit = target or MAX_LONG[split]
    target = target or TARGET_LONG[split]
    if is_jpeg:
        scale = min(target / long_side, 1.0 / JPEG_MIN_FACTOR)
    elif long_side > limit:
        scale = target / long_side
    else:
        return size
    return max(1, round(w * scale)), max(1, round(h * scale))


def downscale(im: Image.Image, split: str, is_jpeg: bool, steps: list[str], target: int = 0) -> Image.Image:
    new_size = scaled_size(im.size, split, is_jpeg, target)
    if new_size == im.size:
        return im
    w, h = im.size
    steps.append(f"lanczos downscale {w}x{h} -> {new_size[0]}x{new_size[1]}")
    return im.resize(new_size, Image.Resampling.LANCZOS)


def crop_to_multiple(im: Image.Image, multiple: int, steps: list[str]) -> Image.Image:
    """Centre-crop so both sides are divisible by ``multiple``."""
    w, h = im.size
    cw, ch = w - w % multiple, h - h % multiple
    if (cw, ch) == (w, h):
        steps.append(f"size already divisible by {multiple}")
        return im
    left, top = (w - cw) // 2, (h - ch) // 2
    steps.append(f"centre crop to /{multiple} {w}x{h} -> {cw}x{ch}")
    return im.crop((left, top, left + cw, top + ch))


def prepare(path: Path, split: str, spec_size: tuple[int, bool, int], steps: list[str]) -> Image.Image:
    """Load and size one HR image. ``spec_size`` is (frame border to remove, native, target long side):
    ``native`` keeps a PNG (a screenshot) at its own pixel grid; a target of 0 is the split's."""
    border, native, target = spec_size
    im = load(path, steps)
    im = crop_border(im, border, steps)
    is_jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    if native and not is_jpeg:
        steps.append("native resolution (pixel-exact UI)")
    else:
        im = downscale(im, split, is_jpeg, steps, target)
    return crop_to_multiple(im, MULTIPLE, steps)


def png_bytes(im: Image.Image) -> bytes:
    """Encode as a bare 8-bit RGB or gray PNG: no ancillary chunks, deterministic bytes."""
    mode = "L" if im.mode == "L" else "RGB"
    clean = Image.fromarray(np.ascontiguousarray(np.asarray(im.convert(mode), dtype=np.uint8)), mode)
    buf = io.BytesIO()
    clean.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
