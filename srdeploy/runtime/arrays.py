"""What the Upscaler accepts and returns: checks and conversions between app images and the
model's (3,H,W) float32 RGB in [0, 1].

Apps hand over whatever their image library produced; a wrong dtype or layout must fail with a
message that says what to change, not with an ONNX Runtime shape error deep in a session (or, worse,
a silently wrong picture, e.g. 0..255 floats). Outputs come back in the caller's type so an app
never needs to know the model works in float RGB. The output array is allocated once at its final
dtype and tiles are converted into it, so an 8-bit 4000x3000 x4 result costs 576 MB, not 2.3 GB.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from srdeploy.errors import DataError

ACCEPTED_DTYPES = (np.uint8, np.uint16, np.float32, np.float64)
PIL_MODES = ("L", "RGB", "RGBA", "I;16", "I;16L", "I;16B")
_DTYPE_HINT = (
    "pass uint8 (0..255), uint16 (0..65535) or float32/float64 in [0, 1], "
    "e.g. arr.astype(np.uint8) for 0..255 integers or arr.astype(np.float32) for float16"
)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # PIL's RGB -> L weights


@dataclass
class Prepared:
    """An input image taken apart: model input, alpha, and how to rebuild the caller's type."""

    chw: np.ndarray  # (3,H,W) float32 RGB in [0, 1]
    alpha: np.ndarray | None  # (H,W) in the input dtype, or None
    dtype: np.dtype  # dtype of the caller's samples (uint8 for PIL L/RGB/RGBA)
    layout: str  # "gray" (HxW), "gray1" (HxWx1), "rgb" (HxWx3), "rgba" (HxWx4)
    pil_mode: str | None  # set when the input was a PIL image

    @property
    def height(self) -> int:
        return int(self.chw.shape[1])

    @property
    def width(self) -> int:
        return int(self.chw.shape[2])


def _max_value(dtype: np.dtype) -> float:
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0


def _from_pil(image: Any) -> tuple[np.ndarray, str]:
    mode = image.mode
    if mode not in PIL_MODES:
        raise DataError(
            f"PIL image mode {mode!r} is not supported (supported: {', '.join(PIL_MODES)})",
            "convert it first, e.g. image.convert('RGB'), or image.convert('RGBA') to keep transparency",
        )
    arr = np.asarray(image)
    return (arr.astype(np.uint16) if mode.startswith("I;16") else arr), mode


def prepare(image: Any, max_megapixels: float | None) -> Prepared:
    """Check ``image`` (NumPy array or PIL Image) and convert it to model input; DataError if unusable."""
    pil_mode = None
    if hasattr(image, "mode") and hasattr(image, "getbands"):
        image, pil_mode = _from_pil(image)
    if not isinstance(image, np.ndarray):
        raise DataError(
            f"cannot upscale a {type(image).__name__}", "pass a NumPy array (HxW, HxWx3, HxWx4) or a PIL Image"
        )
    arr = image
    if arr.dtype.type not in ACCEPTED_DTYPES:
        raise DataError(f"image dtype {arr.dtype} is not supported", _DTYPE_HINT)
    layout = {2: "gray"}.get(arr.ndim) or (
        {1: "gray1", 3: "rgb", 4: "rgba"}.get(arr.shape[-1]) if arr.ndim == 3 else None
    )
    if layout is None:
        hint = "pass HxW (grayscale), HxWx3 (RGB) or HxWx4 (RGBA), channels last; upscale batches one image at a time"
        if arr.ndim == 3 and arr.shape[0] in (1, 3, 4):
            hint = "this looks channels-first; pass arr.transpose(1, 2, 0)"
        raise DataError(f"image shape {arr.shape} is not supported", hint)
    h, w = arr.shape[:2]
    if h == 0 or w == 0:
        raise DataError(f"image has zero size ({w}x{h})", "pass an image of at least 1x1 pixels")
    if max_megapixels is not None and h * w > max_megapixels * 1e6:
        raise DataError(
            f"image is {w}x{h} = {h * w / 1e6:.1f} MP, above this Upscaler's max_megapixels={max_megapixels:g}",
            "split it, downscale it, or create the Upscaler with a larger max_megapixels (memory grows with it)",
        )
    if arr.dtype.kind == "f":
        lo, hi = float(arr.min()), float(arr.max())  # NaN propagates through min/max
        if not (np.isfinite(lo) and np.isfinite(hi)):
            bad = int(np.count_nonzero(~np.isfinite(arr)))
            raise DataError(
                f"float image contains {bad} NaN/Inf values", "replace them, e.g. np.nan_to_num(arr, nan=0.0)"
            )
        if lo < -1e-3 or hi > 1.0 + 1e-3:
            hint = "divide by 255 (or 65535) first" if hi > 1.5 else "clip it with np.clip(arr, 0, 1)"
            raise DataError(f"float image values span [{lo:g}, {hi:g}]; float input must lie in [0, 1]", hint)
    scale = np.float32(1.0 / _max_value(arr.dtype))
    rgb = arr[..., :3] if layout in ("rgb", "rgba") else (arr[..., 0] if layout == "gray1" else arr)
    planes = np.empty((1 if rgb.ndim == 2 else 3, h, w), dtype=np.float32)
    for c in range(planes.shape[0]):
        np.multiply(rgb if rgb.ndim == 2 else rgb[..., c], scale, out=planes[c], dtype=np.float32)
    if arr.dtype.kind == "f":
        np.clip(planes, 0.0, 1.0, out=planes)
    # Grayscale: a broadcast view, so it costs one float plane, not three.
    chw = np.broadcast_to(planes, (3, h, w)) if planes.shape[0] == 1 else planes
    alpha = arr[..., 3] if layout == "rgba" else None
    return Prepared(chw=chw, alpha=alpha, dtype=arr.dtype, layout=layout, pil_mode=pil_mode)


Converter = Callable[[np.ndarray], np.ndarray]


def to_dtype(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float [0,1] samples -> ``dtype`` (rounded, clipped). Model outputs overshoot [0,1] slightly."""
    if dtype.kind == "f":
        return np.clip(x, 0.0, 1.0).astype(dtype, copy=False)
    top = _max_value(dtype)
    return np.clip(np.rint(x * top), 0, top).astype(dtype)


def allocate_output(prep: Prepared, scale: int) -> tuple[np.ndarray, np.ndarray, Converter]:
    """-> (container in the caller's layout, (C,sH,sW) view that tiles are written into, converter).

    The view is channels-first over the channels-last container, so tiled inference writes each
    core straight into the final array; grayscale writes one luma channel.
    """
    sh, sw = prep.height * scale, prep.width * scale
    channels = {"gray": 1, "gray1": 1, "rgb": 3, "rgba": 4}[prep.layout]
    container = np.empty((sh, sw, channels), dtype=prep.dtype)
    if channels == 1:
        view = container.transpose(2, 0, 1)

        def convert(core: np.ndarray) -> np.ndarray:
            # As PIL's RGB -> L on the clipped RGB result, so gray == upscale(RGB).convert("L").
            return to_dtype(np.tensordot(_LUMA, np.clip(core, 0.0, 1.0), axes=1)[None], prep.dtype)

        return container, view, convert
    return container, container[..., :3].transpose(2, 0, 1), lambda core: to_dtype(core, prep.dtype)


def upscale_alpha(alpha: np.ndarray, scale: int, out: np.ndarray, rows: int = 256) -> None:
    """Bicubic-upscale an (H,W) alpha plane into ``out`` (sH,sW), in strips of LR rows.

    Alpha is a coverage mask, not image content: running it through the SR network would invent
    texture, so it gets plain bicubic. Pillow's ``box`` resampling takes filter support from outside
    the box, so strips give exactly the whole-image result at a fraction of the float memory.
    """
    from PIL import Image

    h, w = alpha.shape
    top = _max_value(alpha.dtype)
    src = Image.fromarray(np.ascontiguousarray(alpha, dtype=np.float32) / np.float32(top))  # mode F
    for y0 in range(0, h, rows):
        y1 = min(h, y0 + rows)
        strip = src.resize((w * scale, (y1 - y0) * scale), Image.Resampling.BICUBIC, box=(0, y0, w, y1))
        out[y0 * scale : y1 * scale] = to_dtype(np.asarray(strip), alpha.dtype)


def finish(prep: Prepared, container: np.ndarray) -> Any:
    """The output container -> the caller's type: same dtype, layout and PIL mode as the input."""
    out = container[..., 0] if prep.layout == "gray" else container
    if prep.pil_mode is None:
        return out
    from PIL import Image

    if prep.pil_mode.startswith("I;16"):
        return Image.fromarray(np.ascontiguousarray(out, dtype=np.uint16))
    return Image.fromarray(out)
