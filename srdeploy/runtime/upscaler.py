"""The embeddable upscaler: a build folder (or one ONNX file) in, ``upscale(image)`` out.

Apps should not have to know about tiers, tiles, QDQ graphs or the model's float RGB layout:

    up = Upscaler.from_build("builds/int8_edsr_x4")       # CPU, ort profile, tiers routed per tile
    big = up.upscale(np.asarray(Image.open("in.png")))     # same dtype/layout (or PIL mode) back
    up.last_stats                                          # tiles, tiles per tier, FAB, seconds

Memory is bounded by ``max_batch_pixels`` (LR pixels per inference call), not by the image: large
images are tiled automatically, and tiles are converted straight into the final output array.
Measured peak RSS (VmHWM of a fresh process, 2 threads, CPU, AMD EPYC AVX-512 VNNI, 2026-12-08) for a
4000x3000 uint8 RGB input at x4 with the defaults (auto tile 320 + 16 overlap, 130 tiles, 1 tile per
call), EDSR-baseline x4 `int8_edsr_x4` build: 1266 MB in 68.7 s with ONNX Runtime's CPU arena on (the
runtime's setting), 1176 MB in 77.0 s with it off; the 576 MB output and the 144 MB float input are part of
it (tests/runtime/test_upscaler.py::test_large_image_memory runs the tiny test model the same way). Float
input returns float output at 4 (float32) or 8 (float64) bytes per sample: budget for that.
Routing is a pure function of the tile pixels (runtime/routing.py), so results are deterministic.
An instance is not meant for concurrent ``upscale`` calls (``last_stats`` is per instance).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from srdeploy.errors import BuildFolderError, SrdeployError
from srdeploy.runtime.arrays import allocate_output, finish, prepare, upscale_alpha
from srdeploy.runtime.padding import run_padded
from srdeploy.runtime.routing import make_router
from srdeploy.runtime.sessions import (
    ModelSet,
    Provider,
    load_model_set,
    open_session,
    resolve_profile,
    resolve_providers,
)
from srdeploy.runtime.tiling import DEFAULT_MAX_BATCH_PIXELS, plan_tiles, upscale_tiled
from srdeploy.size_rules import SizeRules

DEFAULT_OVERLAP = 16
DEFAULT_MAX_MEGAPIXELS = 25.0  # input size guard: 25 MP at x4 is a 400 MP (1.2 GB 8-bit) output


@dataclass(frozen=True)
class UpscaleStats:
    """What one ``upscale`` call did (``Upscaler.last_stats``)."""

    input_size: tuple[int, int]  # (width, height)
    output_size: tuple[int, int]
    tile: int | None  # None: whole image in one inference
    overlap: int
    tiles: int
    tiles_per_tier: dict[int, int]
    batches: int
    fab: float | None  # feature-average bits, tiers' FAB weighted by tiles routed to each
    seconds: float
    providers: list[str] = field(default_factory=list)

    @property
    def megapixels_per_second(self) -> float:
        """Input (LR) megapixels per second."""
        w, h = self.input_size
        return w * h / 1e6 / self.seconds if self.seconds > 0 else float("inf")


def _parse_tier(tier: int | str, models: ModelSet) -> int | None:
    if tier == "auto":
        return None
    try:
        index = int(tier)
    except (TypeError, ValueError):
        index = None
    if index is None or index not in models.tiers:
        raise BuildFolderError(
            f"tier {tier!r} is not in this build",
            f"use 'auto' (route by image complexity) or one of: {', '.join(map(str, sorted(models.tiers)))}",
        )
    return index


class Upscaler:
    """Runs an srdeploy model (one file or a tier set) on images of any size."""

    def __init__(
        self,
        model: str | os.PathLike[str],
        profile: str | None = None,
        providers: Sequence[Provider] | None = None,
        threads: int | None = None,
        tile: int | None = None,
        overlap: int = DEFAULT_OVERLAP,
        batch_size: int = 4,
        tier: int | str = "auto",
        max_megapixels: float | None = DEFAULT_MAX_MEGAPIXELS,
        max_batch_pixels: int = DEFAULT_MAX_BATCH_PIXELS,
        backend: str = "onnxruntime",
        size_rules: SizeRules | None = None,
    ) -> None:
        """``model``: an .onnx file, a tiers.json (tier files beside it) or a build folder.

        ``providers``: None = CPU; ['auto'] = best available (TensorRT for the trt profile, CUDA,
        then CPU); or an explicit ONNX Runtime provider list. ``threads``: intra-op threads (None =
        ONNX Runtime's default, all cores). ``tile``: LR core size (None = automatic above
        ``max_batch_pixels``); ``overlap``: LR context per side; ``batch_size``: most tiles per call.
        ``tier``: 'auto' routes each image/tile by the build's selector; an index forces that tier.
        ``backend``: 'onnxruntime' or 'openvino' (CPU plugin; ``pip install 'srdeploy[openvino]'``).
        ``profile``: None = 'ort' on ONNX Runtime; on OpenVINO the build's 'openvino' profile, or its
        'ort' graph when it has none (said in ``notes``). ``size_rules``: the input sizes the graph accepts
        (None: the build's tiers.json says; a bare .onnx of a window network needs them given here).
        Images and tiles are padded to them and the output cropped (runtime/padding.py).
        """
        if tile is not None and tile < 8:
            raise SrdeployError(f"tile={tile} is too small", "use tile >= 8 LR pixels (64-512 is typical)")
        if overlap < 0 or batch_size < 1 or max_batch_pixels < 1:
            raise SrdeployError(
                f"invalid overlap={overlap} / batch_size={batch_size} / max_batch_pixels={max_batch_pixels}",
                "overlap must be >= 0, batch_size and max_batch_pixels >= 1",
            )
        profile, note = resolve_profile(model, profile, backend)
        if backend == "openvino" and providers is not None:
            raise SrdeployError("providers are ONNX Runtime execution providers", "drop them for backend='openvino'")
        self.notes: list[str] = [note] if note else []
        self.models = load_model_set(model, profile)
        self.size_rules = self.models.size_rules if size_rules is None else size_rules
        self.profile, self.backend = profile, backend
        self.tile, self.overlap, self.batch_size = tile, overlap, batch_size
        self.max_megapixels, self.max_batch_pixels = max_megapixels, max_batch_pixels
        self.forced_tier = _parse_tier(tier, self.models)
        chosen = resolve_providers(providers, profile) if backend == "onnxruntime" else None
        self.sessions = {
            k: open_session(t.path, threads, chosen, backend) for k, t in sorted(self.models.tiers.items())
        }
        first = self.sessions[min(self.sessions)]
        self.scale: int = self.models.scale or first.probe_scale(self.size_rules)
        self.providers: list[str] = first.providers
        self._route = make_router(self.models.selector, self.models.default_tier, set(self.models.tiers))
        self.last_stats: UpscaleStats | None = None

    @classmethod
    def from_build(
        cls,
        path: str | os.PathLike[str],
        profile: str | None = None,
        providers: Sequence[Provider] | None = None,
        threads: int | None = None,
        tile: int | None = None,
        overlap: int = DEFAULT_OVERLAP,
        batch_size: int = 4,
        tier: int | str = "auto",
        **kwargs: Any,
    ) -> Upscaler:
        """Open a folder written by ``srdeploy build`` (format version and checksums are checked)."""
        if not Path(path).is_dir():
            raise BuildFolderError(f"build folder not found: {path}", "pass the folder `srdeploy build` wrote")
        return cls(path, profile, providers, threads, tile, overlap, batch_size, tier, **kwargs)

    @property
    def tiers(self) -> list[int]:
        return sorted(self.models.tiers)

    def route(self, chw: np.ndarray) -> int:
        """The tier an LR image or tile (3,H,W float [0,1]) goes to under tier='auto'."""
        return self._route(chw)

    def _infer(self, batch: np.ndarray, tier: int) -> np.ndarray:
        y = run_padded(self.sessions[tier].infer, batch, self.size_rules, self.scale)
        n, _, h, w = batch.shape
        if y.shape != (n, 3, h * self.scale, w * self.scale):
            raise BuildFolderError(
                f"tier {tier} returned {tuple(y.shape)} for input {tuple(batch.shape)} (expected x{self.scale})",
                "the model file does not match its tiers.json; rebuild the folder",
            )
        return y

    def upscale(
        self,
        image: Any,
        tier: int | str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Any:
        """Super-resolve one image; returns the same kind of image ``scale`` times larger.

        ``image``: NumPy uint8/uint16/float32/float64 ([0,1]) as HxW, HxWx1, HxWx3 or HxWx4, or a
        PIL Image in mode L, RGB, RGBA or I;16. Grayscale is run as replicated RGB and returned as
        luma; alpha is upscaled with bicubic. ``tier`` overrides the constructor's choice for this
        call. ``progress(done_tiles, total_tiles)`` is called after each batch.
        """
        t0 = time.perf_counter()
        forced = self.forced_tier if tier is None else _parse_tier(tier, self.models)
        route = self._route if forced is None else (lambda _x: forced)
        prep = prepare(image, self.max_megapixels)
        h, w, s = prep.height, prep.width, self.scale
        container, view, convert = allocate_output(prep, s)
        tile, per_batch = plan_tiles(h, w, self.tile, self.overlap, self.batch_size, self.max_batch_pixels)
        if tile is None:
            chosen = route(prep.chw)
            view[...] = convert(self._infer(prep.chw[None], chosen)[0])
            tiles, usage, batches = 1, {chosen: 1}, 1
            if progress:
                progress(1, 1)
        else:
            _, ts = upscale_tiled(
                prep.chw, s, self._infer, tile, self.overlap, route, per_batch, view, convert, progress
            )
            tiles, usage, batches = ts.tiles, ts.tiles_per_tier, ts.batches
        if prep.alpha is not None:
            upscale_alpha(prep.alpha, s, container[..., 3])
        fabs = {k: self.models.tiers[k].fab for k in usage}
        fab = None if any(v is None for v in fabs.values()) else sum(usage[k] * fabs[k] for k in usage) / tiles
        self.last_stats = UpscaleStats(
            input_size=(w, h),
            output_size=(w * s, h * s),
            tile=tile,
            overlap=self.overlap,
            tiles=tiles,
            tiles_per_tier=dict(sorted(usage.items())),
            batches=batches,
            fab=fab,
            seconds=time.perf_counter() - t0,
            providers=self.providers,
        )
        return finish(prep, container)

    def __repr__(self) -> str:
        return (
            f"Upscaler({self.models.source}, backend={self.backend}, profile={self.profile}, x{self.scale}, "
            f"tiers={self.tiers}, "
            f"providers={self.providers})"
        )
