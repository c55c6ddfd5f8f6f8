"""The calibration inputs a recipe's ``calib`` section names, as (N, 3, P, P) float32 LR patches in [0, 1].

- ``degradation: bicubic`` (default): seeded crops of the bicubic-downscaled HR images (sets.lr_patches);
- ``degradation: none``: seeded crops of the images as they are — they are the low-resolution model inputs;
- ``tensors: FILE``: seeded crops of the tensors (data/tensors.py), or the tensors themselves, in file order,
  when they are already P x P (at most ``count`` of them).

Only the first has HR behind each patch (CalibSection.has_hr); recipe.py refuses the steps that need it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from srdeploy.data.file_cache import cached_reader
from srdeploy.data.sets import MIN_PATCH, load_images, lr_patches, patch_source_count
from srdeploy.data.tensors import load_tensors
from srdeploy.errors import DataError
from srdeploy.recipe_calib import CalibSection

_tensors = cached_reader(load_tensors, maxsize=4)


def _chw_sources(calib: CalibSection) -> tuple[str, Sequence[np.ndarray]]:
    """What the crops come from: (description, CHW arrays) for ``degradation: none`` or ``tensors``."""
    if calib.tensors:
        return f"calib.tensors {calib.tensors}", _tensors(calib.tensors)
    images = [img.transpose(2, 0, 1) for _, img in load_images(calib.source)]
    return f"the LR images in '{calib.source}'", images


def random_crops(
    sources: Sequence[np.ndarray], patch: int, count: int, seed: int, what: str, patch_key: str
) -> np.ndarray:
    """``count`` seeded random ``patch`` x ``patch`` crops of (3, H, W) arrays, from those large enough."""
    fit = [s for s in sources if min(s.shape[1:]) >= patch]
    if not fit:
        largest = max(min(s.shape[1:]) for s in sources)
        fix = f"use inputs of at least {patch}x{patch} px"
        if largest >= MIN_PATCH:
            fix += f", or set {patch_key} to {largest} or less"
        raise DataError(f"every input in {what} is smaller than one {patch}x{patch} patch (largest: {largest})", fix)
    rng = np.random.default_rng(seed)
    out = np.empty((count, 3, patch, patch), dtype=np.float32)
    for i in range(count):
        src = fit[int(rng.integers(len(fit)))]
        y = int(rng.integers(src.shape[1] - patch + 1))
        x = int(rng.integers(src.shape[2] - patch + 1))
        out[i] = src[:, y : y + patch, x : x + patch]
    return out


def calib_patches(
    calib: CalibSection, scale: int, patch: int, count: int, seed: int, patch_key: str = "calib.patch_size"
) -> np.ndarray:
    """The recipe's calibration inputs: (``count``, 3, ``patch``, ``patch``) float32 in [0, 1]."""
    if calib.has_hr:
        return lr_patches(calib.source, scale, patch, count, seed)
    what, sources = _chw_sources(calib)
    if calib.tensors and sources[0].shape[1:] == (patch, patch):
        return np.array(sources[:count], dtype=np.float32)
    return random_crops(sources, patch, count, seed, what, patch_key)


def source_count(calib: CalibSection, scale: int, patch: int) -> int:
    """How many distinct images (or tensors) are large enough to give ``patch`` x ``patch`` patches."""
    if calib.has_hr:
        return patch_source_count(calib.source, scale, patch)
    return sum(min(s.shape[1:]) >= patch for s in _chw_sources(calib)[1])
