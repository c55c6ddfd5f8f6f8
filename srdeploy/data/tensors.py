"""Calibration tensors from a ``.npy`` or ``.npz`` file (ModelOpt's ``--calibration_data_path`` convention).

Accepted, and nothing else:

- float (float16/32/64) ``(N, 3, H, W)``, values in [0, 1] — the model's input layout and range;
- uint8 ``(N, H, W, 3)`` — 8-bit RGB images stacked, divided by 255.

A ``.npy`` holds the array; a ``.npz`` holds exactly one array, or names it ``input`` (the model input name,
srdeploy.export.INPUT_NAME). Files are read with ``allow_pickle=False``: object arrays are refused.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from srdeploy.errors import DataError

INPUT_NAME = "input"  # srdeploy.export.INPUT_NAME (not imported: export pulls in torch)
FIX = "save a (N, 3, H, W) float32 array in [0, 1] or a (N, H, W, 3) uint8 array with np.save / np.savez"


def _read_array(path: Path) -> np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded as archive:
            names = list(archive.files)
            if not names:
                raise DataError(f"calib.tensors {path} holds no arrays", FIX)
            if INPUT_NAME in names:
                return archive[INPUT_NAME]
            if len(names) > 1:
                raise DataError(
                    f"calib.tensors {path} holds {len(names)} arrays ({', '.join(names[:5])}) and none named "
                    f"'{INPUT_NAME}'",
                    f"name the calibration array '{INPUT_NAME}' (np.savez(path, {INPUT_NAME}=x)) or save only it",
                )
            return archive[names[0]]
    except ValueError as exc:  # pickled object arrays, malformed headers
        raise DataError(f"cannot read calib.tensors {path}: {exc}", FIX) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read calib.tensors {path}: {exc}", "the file is truncated or not NumPy") from None


def _as_nchw(arr: np.ndarray, path: Path) -> np.ndarray:
    where = f"calib.tensors {path} has shape {arr.shape} and dtype {arr.dtype}"
    if arr.ndim != 4:
        raise DataError(f"{where}: need 4 dimensions, (N, 3, H, W) or uint8 (N, H, W, 3)", FIX)
    if arr.size == 0:
        raise DataError(f"{where}: it is empty", FIX)
    if arr.dtype == np.uint8:
        if arr.shape[3] != 3:
            raise DataError(f"{where}: uint8 tensors must be (N, H, W, 3) RGB", FIX)
        return np.ascontiguousarray(arr.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
    if arr.dtype.kind != "f":
        raise DataError(f"{where}: need float in [0, 1] or uint8", FIX)
    if arr.shape[1] != 3:
        raise DataError(f"{where}: float tensors must be (N, 3, H, W) with 3 (RGB) channels", FIX)
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        raise DataError(f"{where}: it holds NaN or infinite values", "replace them; inputs are pixels in [0, 1]")
    lo, hi = float(out.min()), float(out.max())
    if lo < 0 or hi > 1:
        raise DataError(
            f"{where}: values span {lo:.4g}..{hi:.4g}, outside [0, 1]", "scale to [0, 1] (8-bit data: divide by 255)"
        )
    return out


def load_tensors(path: str | os.PathLike[str]) -> np.ndarray:
    """The file's calibration inputs as float32 (N, 3, H, W) in [0, 1]; DataError naming what is wrong."""
    path = Path(path)
    if path.suffix.lower() not in (".npy", ".npz"):
        raise DataError(f"calib.tensors {path} is not a .npy or .npz file", FIX)
    if not path.is_file():
        raise DataError(f"calib.tensors {path} not found", "check the path (relative to the working folder)")
    return _as_nchw(_read_array(path), path)
