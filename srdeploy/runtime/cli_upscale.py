"""``srdeploy upscale IN OUT --build DIR``: image files or a folder through an Upscaler.

Every input is opened and checked before the model loads or anything is written, so a bad file
in a folder fails the run up front, naming the file. Outputs are written atomically (a reader never
sees a partial image) in the input's format and mode; 16-bit grayscale PNGs stay 16-bit. Pillow
decodes 16-bit *colour* PNGs to 8 bits; those are written at 8 bits and listed in the summary notes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srdeploy.data.io import IMAGE_SUFFIXES, list_images
from srdeploy.errors import DataError
from srdeploy.fsutil import atomic_file
from srdeploy.progress import Progress, RichProgress, SilentProgress
from srdeploy.runtime.upscaler import DEFAULT_MAX_MEGAPIXELS, DEFAULT_OVERLAP, Upscaler

_TO_RGB = {"1", "P", "CMYK", "YCbCr", "LAB", "HSV"}
_TO_RGBA = {"LA", "PA", "La", "RGBa", "RGBX"}
_NO_ALPHA_SUFFIXES = {".jpg", ".jpeg", ".bmp"}
_MAX_LISTED = 5


@dataclass
class UpscaleSummary:
    """What ``upscale_paths`` did; the CLI prints ``describe()``."""

    outputs: list[Path] = field(default_factory=list)
    input_megapixels: float = 0.0
    seconds: float = 0.0
    tiles: int = 0
    tiles_per_tier: dict[int, int] = field(default_factory=dict)
    fab: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def images(self) -> int:
        return len(self.outputs)

    def describe(self) -> str:
        """Plain text (no rich markup: print it with markup=False, file names may hold brackets)."""
        usage = ", ".join(f"tier {k}: {v}" for k, v in sorted(self.tiles_per_tier.items()))
        mps = self.input_megapixels / self.seconds if self.seconds > 0 else 0.0
        fab = "" if self.fab is None else f", FAB {self.fab:.2f}"
        lines = [
            f"{self.images} image(s), {self.input_megapixels:.2f} MP in {self.seconds:.1f} s "
            f"({mps:.3f} MP/s); {self.tiles} tile(s) ({usage}){fab}"
        ]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def _plan_outputs(inp: Path, out: Path) -> list[tuple[Path, Path]]:
    if inp.is_dir():
        files = list_images(inp)
        if out.exists() and not out.is_dir():
            raise DataError(f"{out} is a file but {inp} is a folder", "pass an output folder")
        if out.resolve() == inp.resolve():
            raise DataError(f"output folder {out} is the input folder", "pass a different output folder")
        return [(f, out / f.name) for f in files]
    if not inp.is_file():
        raise DataError(f"input not found: {inp}", "pass an image file or a folder of images")
    dest = out / inp.name if out.is_dir() or out.suffix.lower() not in IMAGE_SUFFIXES else out
    if dest.resolve() == inp.resolve():
        raise DataError(f"output {dest} would overwrite the input", "pass a different output path")
    return [(inp, dest)]


def _check(src: Path, dest: Path, max_megapixels: float | None) -> str | None:
    """Cheap check of one input (header, CRCs for PNG, size, alpha vs output format)."""
    from PIL import Image

    try:
        with Image.open(src) as img:
            size, mode = img.size, img.mode
            alpha = mode in _TO_RGBA or mode == "RGBA" or (mode == "P" and "transparency" in img.info)
            img.verify()
    except Exception as exc:  # Pillow raises many types for damaged files
        return f"{src}: cannot read ({type(exc).__name__}: {exc})"
    if size[0] * size[1] == 0:
        return f"{src}: zero size {size[0]}x{size[1]}"
    if max_megapixels is not None and size[0] * size[1] > max_megapixels * 1e6:
        return f"{src}: {size[0]}x{size[1]} is above max {max_megapixels:g} MP"
    if dest.suffix.lower() in _NO_ALPHA_SUFFIXES and alpha:
        return f"{src}: has transparency, which {dest.suffix} cannot store (write .png)"
    return None


def _load(src: Path, notes: list[str]) -> tuple[Any, dict[str, Any]]:
    """Open fully and normalise the mode to one the Upscaler returns (L, RGB, RGBA, I;16)."""
    import numpy as np
    from PIL import Image, ImageOps

    try:
        with Image.open(src) as img:
            rawmode = str(img.tile[0].args) if img.tile else ""  # load() clears .tile
            img.load()
            info = {k: img.info[k] for k in ("icc_profile", "dpi") if k in img.info}
            img = ImageOps.exif_transpose(img)
    except Exception as exc:
        raise DataError(f"cannot read image {src}: {exc}", "the file is truncated, corrupt, or not an image") from exc
    if rawmode.endswith(";16B") and img.mode in ("RGB", "RGBA", "LA"):
        notes.append(f"{src.name}: 16-bit colour PNG decoded and written at 8 bits (Pillow has no 16-bit colour)")
    if img.mode in _TO_RGB:
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode in _TO_RGBA:
        img = img.convert("RGBA")
    elif img.mode == "I":  # some 16-bit grayscale files open as 32-bit integers
        img = Image.fromarray(np.clip(np.asarray(img), 0, 65535).astype(np.uint16))
    elif img.mode == "F":
        raise DataError(f"{src}: 32-bit float images are not supported", "convert it to 16-bit PNG or TIFF first")
    return img, info


def _save(img: Any, dest: Path, info: dict[str, Any]) -> None:
    params: dict[str, Any] = dict(info)
    if dest.suffix.lower() in (".jpg", ".jpeg"):
        params["quality"] = 95
    try:
        with atomic_file(dest) as tmp:
            img.save(tmp, **params)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(
            f"cannot write {dest} ({img.mode}): {exc}", "pick an output format that can store it, e.g. .png"
        ) from exc


def _tile_progress(advance: Callable[[float], None], image_index: int) -> Callable[[int, int], None]:
    """Move the per-image bar smoothly through an image's tiles."""
    return lambda done, total: advance(image_index + done / total)


def upscale_paths(
    inp: Path,
    out: Path,
    build: Path,
    tile: int | None = None,
    tier: str = "auto",
    profile: str | None = None,
    threads: int | None = None,
    progress: bool | Progress | None = False,
    overlap: int = DEFAULT_OVERLAP,
    providers: list[str] | None = None,
    max_megapixels: float | None = DEFAULT_MAX_MEGAPIXELS,
    backend: str = "onnxruntime",
) -> UpscaleSummary:
    """Upscale one image file or every image in a folder with the model of build folder ``build``.

    ``out``: for a folder, the output folder (created); for a file, the output file, or a folder to
    write it into (an existing folder, or a path without an image suffix). Raises DataError before
    writing anything if any input is unreadable; BuildFolderError if ``build`` is unusable.
    """
    inp, out, build = Path(inp), Path(out), Path(build)
    pairs = _plan_outputs(inp, out)
    problems = [p for p in (_check(s, d, max_megapixels) for s, d in pairs) if p]
    if problems:
        listed = "; ".join(problems[:_MAX_LISTED]) + (
            f"; and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        )
        raise DataError(
            f"{len(problems)} of {len(pairs)} input image(s) unusable: {listed}",
            "fix or remove those files; nothing was written",
        )
    up = Upscaler.from_build(
        build, profile, providers, threads, tile, overlap, tier=tier, max_megapixels=max_megapixels, backend=backend
    )
    if progress is True:
        progress = RichProgress()
    bar: Progress = progress if progress else SilentProgress()
    summary = UpscaleSummary(notes=list(up.notes))
    usage: Counter[int] = Counter()
    fab_sum = 0.0
    t0 = time.perf_counter()
    with bar.stage(f"upscale {len(pairs)} image(s) x{up.scale}", total=len(pairs)) as advance:
        for i, (src, dest) in enumerate(pairs):
            try:
                img, info = _load(src, summary.notes)
            except DataError as exc:
                written = f"{i} of {len(pairs)} outputs were already written" if i else "nothing was written"
                raise DataError(f"{exc.problem} ({written})", exc.hint) from exc
            result = up.upscale(img, progress=_tile_progress(advance, i))
            _save(result, dest, info)
            stats = up.last_stats
            assert stats is not None
            summary.outputs.append(dest)
            summary.input_megapixels += img.width * img.height / 1e6
            summary.tiles += stats.tiles
            usage.update(stats.tiles_per_tier)
            fab_sum += (stats.fab or 0.0) * stats.tiles
            summary.fab = None if stats.fab is None else fab_sum / summary.tiles
            advance(i + 1)
    summary.seconds = time.perf_counter() - t0
    summary.tiles_per_tier = dict(sorted(usage.items()))
    return summary
