"""Named image sets (calib_data/<name>) and any folder of HR images, as LR/HR pairs or patches."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srdeploy.data.categories import UNCATEGORISED, read_category_file
from srdeploy.data.degrade import bicubic_downscale, crop_to_multiple
from srdeploy.data.file_cache import cached_reader
from srdeploy.data.io import list_images, read_image
from srdeploy.errors import DataError

MIN_PATCH = 8  # smallest calib.patch_size a recipe accepts


def data_root() -> Path:
    """calib_data/ of the source tree, or $SRDEPLOY_DATA."""
    env = os.environ.get("SRDEPLOY_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "calib_data"


def named_sets() -> list[str]:
    root = data_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def resolve_folder(name_or_folder: str | os.PathLike[str]) -> Path:
    """A named set (e.g. ``train``, ``eval``) or a folder path -> the folder."""
    text = str(name_or_folder)
    folder = Path(text)
    if folder.is_dir():
        return folder
    candidate = data_root() / text
    if candidate.is_dir():
        return candidate
    known = ", ".join(named_sets()) or "none found"
    raise DataError(
        f"'{text}' is neither an image folder nor a named set (named sets: {known})",
        "pass a folder of HR images, or a named set from calib_data/",
    )


def resolve_images(name_or_folder: str | os.PathLike[str]) -> list[Path]:
    """A named set (e.g. ``train``, ``eval``) or a folder path -> sorted image files."""
    return list_images(resolve_folder(name_or_folder))


def image_categories(name_or_folder: str | os.PathLike[str]) -> dict[str, str]:
    """Image stem -> content category (srdeploy.data.categories) for every image of the set.

    Categories come from the folder's ``categories.json``; images it does not name, and all
    images of a plain folder, are ``uncategorised``.
    """
    folder = resolve_folder(name_or_folder)
    tagged = read_category_file(folder)
    return {p.stem: tagged.get(p.stem, UNCATEGORISED) for p in list_images(folder)}


@dataclass(frozen=True)
class SRPair:
    name: str
    hr: np.ndarray  # HxWx3 float32 [0,1], cropped to a multiple of the scale
    lr: np.ndarray  # (H/s)x(W/s)x3 float32 [0,1], bicubic, 8-bit rounded


_read = cached_reader(read_image, maxsize=64)


def load_images(name_or_folder: str | os.PathLike[str]) -> list[tuple[str, np.ndarray]]:
    """Every image of the set as it is (name, HxWx3 float32 [0,1], read-only): ``calib.degradation: none``."""
    return [(f.stem, _read(f)) for f in resolve_images(name_or_folder)]


def load_pairs(name_or_folder: str | os.PathLike[str], scale: int, max_images: int | None = None) -> list[SRPair]:
    if max_images is not None and max_images < 1:
        raise DataError(f"max_images={max_images} must be >= 1", "omit it to use every image")
    files = resolve_images(name_or_folder)
    if max_images:
        files = files[:max_images]
    pairs = []
    for f in files:
        hr = crop_to_multiple(_read(f), scale)
        if min(hr.shape[:2]) < 2 * scale:
            raise DataError(f"image {f} is too small ({hr.shape[1]}x{hr.shape[0]}) for x{scale}", "remove it")
        pairs.append(SRPair(name=f.stem, hr=hr, lr=bicubic_downscale(hr, scale)))
    return pairs


def _patch_sources(name_or_folder: str | os.PathLike[str], scale: int, patch: int) -> list[SRPair]:
    all_pairs = load_pairs(name_or_folder, scale)
    pairs = [p for p in all_pairs if min(p.lr.shape[:2]) >= patch]
    if not pairs:
        largest = max(all_pairs, key=lambda p: min(p.hr.shape[:2]))
        h, w = largest.hr.shape[:2]
        fix = f"add images whose shorter side is at least {patch * scale} px"
        if min(h, w) // scale >= MIN_PATCH:
            fix += f", or set calib.patch_size to {min(h, w) // scale} or less"
        raise DataError(
            f"every image in '{name_or_folder}' is smaller than one {patch}x{patch} LR patch at x{scale}: "
            f"patches need HR images of at least {patch * scale}x{patch * scale} px and the largest here "
            f"('{largest.name}') is {w}x{h}",
            fix,
        )
    return pairs


def sr_patches(
    name_or_folder: str | os.PathLike[str], scale: int, patch: int, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` seeded random crops: LR (N, 3, patch, patch) and the HR behind each (N, patch*s, patch*s, 3)."""
    pairs = _patch_sources(name_or_folder, scale, patch)
    rng = np.random.default_rng(seed)
    lr_out = np.empty((count, 3, patch, patch), dtype=np.float32)
    hr_out = np.empty((count, patch * scale, patch * scale, 3), dtype=np.float32)
    for i in range(count):
        pair = pairs[int(rng.integers(len(pairs)))]
        y = int(rng.integers(pair.lr.shape[0] - patch + 1))
        x = int(rng.integers(pair.lr.shape[1] - patch + 1))
        lr_out[i] = pair.lr[y : y + patch, x : x + patch].transpose(2, 0, 1)
        hr_out[i] = pair.hr[y * scale : (y + patch) * scale, x * scale : (x + patch) * scale]
    return lr_out, hr_out


def lr_patches(name_or_folder: str | os.PathLike[str], scale: int, patch: int, count: int, seed: int) -> np.ndarray:
    """``count`` seeded random LR crops (N, 3, patch, patch) from bicubic-downscaled images (sr_patches' LR)."""
    return sr_patches(name_or_folder, scale, patch, count, seed)[0]


def patch_source_count(name_or_folder: str | os.PathLike[str], scale: int, patch: int) -> int:
    """How many images of the set are large enough to give ``patch`` x ``patch`` LR patches."""
    return sum(min(p.lr.shape[:2]) >= patch for p in load_pairs(name_or_folder, scale))
