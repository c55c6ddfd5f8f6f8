"""``srdeploy upscale IN OUT --build DIR``: image files or a folder through an Upscaler.

Every output location and every input is checked before the model loads or anything is written,
so a bad file in a folder or an unwritable output fails the run up front, naming the path. Outputs
are written atomically (a reader never sees a partial image) in the input's format and mode;
16-bit grayscale PNGs stay 16-bit. Pillow decodes 16-bit *colour* PNGs to 8 bits; those are
written at 8 bits and listed in the summary notes.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
_FORMAT_HINT = "use an output format that can store it, e.g. .png"
_MAX_WRITTEN = 20  # more outputs than this (all in one folder) are summarised as the folder


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
        folders = sorted({str(p.parent) for p in self.outputs})
        if len(self.outputs) > _MAX_WRITTEN and len(folders) == 1:
            lines.append(f"wrote {self.images} image(s) into {folders[0]}/ (same file names as the inputs)")
        else:
            lines += [f"wrote {p}" for p in self.outputs]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def _names_folder(out: str | os.PathLike[str]) -> bool:
    text = os.fspath(out)
    return text.endswith(("/", os.sep)) or Path(text).is_dir()


def _plan_outputs(inp: Path, out_arg: str | os.PathLike[str]) -> list[tuple[Path, Path]]:
    """(input, output) pairs. OUT is a file when it has an image extension, a folder when it ends
    with / or is one; a folder of inputs also accepts a new path without an extension as a folder."""
    out = Path(out_arg)
    if inp.is_dir():
        files = list_images(inp)
        if out.exists() and not out.is_dir():
            raise DataError(f"{out} is a file but {inp} is a folder", "pass an output folder")
        if not _names_folder(out_arg) and out.suffix.lower() in IMAGE_SUFFIXES:
            raise DataError(
                f"{out} names an image file but {inp} is a folder", f"pass an output folder, e.g. {out.stem}/"
            )
        if out.resolve() == inp.resolve():
            raise DataError(f"output folder {out} is the input folder", "pass a different output folder")
        return [(f, out / f.name) for f in files]
    if not inp.is_file():
        raise DataError(f"input not found: {inp}", "pass an image file or a folder of images")
    if _names_folder(out_arg):
        dest = out / inp.name
    elif out.suffix.lower() in IMAGE_SUFFIXES:
        dest = out
    else:
        raise DataError(
            f"output {os.fspath(out_arg)} has no image extension ({', '.join(IMAGE_SUFFIXES)}) and is not a folder",
            "name an image file (e.g. out.png), or end the path with / to write into a folder",
        )
    if dest.resolve() == inp.resolve():
        raise DataError(f"output {dest} would overwrite the input", "pass a different output path")
    return [(inp, dest)]


def _unwritable(dest: Path) -> str | None:
    """Why ``dest`` cannot be written (checked for every output before any inference), or None."""
    if os.path.lexists(dest) and not dest.is_file():
        return f"{dest} exists and is not a file"
    existing = next(p for p in (dest.parent, *dest.parent.parents) if os.path.lexists(p))
    if not existing.is_dir():
        return f"{dest}: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{dest}: {existing} is not writable"
    return None


def _check(src: Path, dest: Path, max_megapixels: float | None) -> str | None:
    """Cheap check of one input (header, CRCs for PNG, size, alpha vs output format)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size check below decides
            with Image.open(src) as img:
                size, mode = img.size, img.mode
                alpha = mode in _TO_RGBA or mode == "RGBA" or (mode == "P" and "transparency" in img.info)
                img.verify()
    except Image.DecompressionBombError:
        return f"{src}: above the {max_megapixels:g} MP input limit (raise it with --max-megapixels)"
    except Exception as exc:  # Pillow raises many types for damaged files
        return f"{src}: cannot read ({type(exc).__name__}: {exc})"
    if size[0] * size[1] == 0:
        return f"{src}: zero size {size[0]}x{size[1]}"
    if max_megapixels is not None and size[0] * size[1] > max_megapixels * 1e6:
        return f"{src}: {size[0]}x{size[1]} is above the {max_megapixels:g} MP input limit (--max-megapixels)"
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
    except OSError as exc:
        if exc.errno is not None:  # the file system, not the format (Pillow's own errors carry no errno)
            raise DataError(
                f"cannot write {dest}: {exc.strerror}", "check the output folder's permissions and free space"
            ) from None
        raise DataError(f"cannot write {dest} ({img.mode}): {exc}", _FORMAT_HINT) from exc
    except (ValueError, KeyError) as exc:
        raise DataError(f"cannot write {dest} ({img.mode}): {exc}", _FORMAT_HINT) from exc


def _tile_progress(advance: Callable[[float], None], image_index: int) -> Callable[[int, int], None]:
    """Move the per-image bar smoothly through an image's tiles."""
    return lambda done, total: advance(image_index + done / total)


def _listed(problems: list[str]) -> str:
    more = f"; and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    return "; ".join(problems[:_MAX_LISTED]) + more


def _checked_pairs(inp: Path, out: str | os.PathLike[str], max_megapixels: float | None) -> list[tuple[Path, Path]]:
    """Plan the outputs and check every output location and input before anything runs."""
    pairs = _plan_outputs(inp, out)
    unwritable = sorted({p for p in (_unwritable(d) for _, d in pairs) if p})
    if unwritable:
        raise DataError(
            f"cannot write the output: {_listed(unwritable)}", "pass a writable output path; nothing was written"
        )
    problems = [p for p in (_check(s, d, max_megapixels) for s, d in pairs) if p]
    if problems:
        raise DataError(
            f"{len(problems)} of {len(pairs)} input image(s) unusable: {_listed(problems)}",
            "fix or remove those files; nothing was written",
        )
    return pairs


@contextmanager
def _pillow_limit(max_megapixels: float | None) -> Iterator[None]:
    """Let Pillow open what --max-megapixels allows (its own bomb guard stops at 89 MP)."""
    from PIL import Image

    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None if max_megapixels is None else max(before or 0, int(max_megapixels * 1e6))
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = before


def upscale_paths(
    inp: Path,
    out: str | os.PathLike[str],
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

    ``out``: for a folder of inputs, the output folder (created). For one file: the output file
    when it has an image extension, a folder to write into when it ends with / or is one; anything
    else is an error. Raises DataError before writing anything if an output cannot be written or
    an input is unreadable or above ``max_megapixels``; BuildFolderError if ``build`` is unusable.
    """
    inp, build = Path(inp), Path(build)
    if max_megapixels is not None and not (math.isfinite(max_megapixels) and max_megapixels > 0):
        raise DataError(f"--max-megapixels {max_megapixels} must be a number > 0", "e.g. --max-megapixels 50")
    with _pillow_limit(max_megapixels):
        pairs = _checked_pairs(inp, out, max_megapixels)
        up = Upscaler.from_build(
            build, profile, providers, threads, tile, overlap, tier=tier, max_megapixels=max_megapixels, backend=backend
        )
        if progress is True:
            progress = RichProgress()
        return _run(up, pairs, progress if progress else SilentProgress())


def _run(up: Upscaler, pairs: list[tuple[Path, Path]], bar: Progress) -> UpscaleSummary:
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
