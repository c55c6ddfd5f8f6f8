"""TensorRT engine settings as plain data (no tensorrt import): what srdeploy asks the builder for.

``EngineConfig.from_recipe`` turns the recipe's ``tensorrt`` section into optimization-profile
shapes, workspace, sparsity and compatibility choices; ``builder_settings(major)`` names the
TensorRT flags to set for that major version (10 or 11), so backends/tensorrt.py only translates
names with ``getattr`` and this logic is testable everywhere.

TensorRT 10: the network is created STRONGLY_TYPED (types come from the ONNX: FP16 float regions,
INT8 from Q/DQ), so no INT8/FP16 builder flags. TensorRT 11: strong typing is the only mode (the
creation flag is deprecated and ignored), and the precision flags no longer exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from srdeploy import __version__
from srdeploy.errors import BackendUnavailable, RecipeError, SrdeployError
from srdeploy.recipe import TensorRTSection

SUPPORTED_MAJORS = (10, 11)
METADATA_FORMAT = 1
HARDWARE_LEVELS = {"none": "NONE", "ampere_plus": "AMPERE_PLUS", "same_compute_capability": "SAME_COMPUTE_CAPABILITY"}
# HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY first appears in the 10.9 Python bindings.
MIN_VERSION_FOR_LEVEL = {"SAME_COMPUTE_CAPABILITY": (10, 9)}
NCHW = tuple[int, int, int, int]


class EngineBuildError(SrdeployError):
    """TensorRT could not parse the ONNX graph or build an engine from it."""


@dataclass(frozen=True)
class ProfileShapes:
    """One optimization profile for the LR input, NCHW."""

    min: NCHW
    opt: NCHW
    max: NCHW

    @classmethod
    def from_nhw(
        cls,
        min_nhw: tuple[int, int, int],
        opt_nhw: tuple[int, int, int],
        max_nhw: tuple[int, int, int],
        channels: int = 3,
        multiple: int = 1,
    ) -> ProfileShapes:
        keys = ("tensorrt.min_shape", "tensorrt.opt_shape", "tensorrt.max_shape")
        triples = [tuple(int(v) for v in t) for t in (min_nhw, opt_nhw, max_nhw)]
        for key, t in zip(keys, triples, strict=True):
            if len(t) != 3 or min(t) < 1:
                raise RecipeError(f"{key} = {list(t)} must be three positive integers (N, H, W)", "e.g. [1, 256, 256]")
            if multiple > 1 and (t[1] % multiple or t[2] % multiple):
                raise RecipeError(
                    f"{key} = {list(t)}: H and W must be multiples of {multiple} for this model",
                    f"round them to a multiple of {multiple}",
                )
        for axis, name in enumerate("NHW"):
            lo, mid, hi = (t[axis] for t in triples)
            if not lo <= mid <= hi:
                raise RecipeError(
                    f"optimization profile {name}: need min <= opt <= max, got {lo}, {mid}, {hi}",
                    "fix tensorrt.min_shape / opt_shape / max_shape",
                )
        lo, mid, hi = ((t[0], channels, t[1], t[2]) for t in triples)
        return cls(min=lo, opt=mid, max=hi)

    def contains(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == 4 and all(lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max, strict=True))

    def as_dict(self) -> dict[str, list[int]]:
        return dict(min=list(self.min), opt=list(self.opt), max=list(self.max))


@dataclass(frozen=True)
class BuilderSettings:
    """What to set on the TensorRT objects, by enum member name."""

    trt_major: int
    network_flags: tuple[str, ...]  # NetworkDefinitionCreationFlag members
    builder_flags: tuple[str, ...]  # BuilderFlag members
    memory_pool_limits: tuple[tuple[str, int], ...]  # (MemoryPoolType member, bytes)
    builder_optimization_level: int
    hardware_compatibility_level: str  # HardwareCompatibilityLevel member
    profiling_verbosity: str = "DETAILED"  # ProfilingVerbosity member: the inspector needs DETAILED
    engine_host_code_allowed: bool = False  # Runtime setting needed to load version-compatible engines

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EngineConfig:
    profile: ProfileShapes
    workspace_bytes: int = 4096 << 20
    sparse_weights: bool = False
    hardware_compatibility: str = "none"
    version_compatible: bool = False
    timing_cache_dir: str | None = None
    builder_optimization_level: int = 3
    required: bool = False

    @classmethod
    def from_recipe(
        cls, section: TensorRTSection, plan_has_2of4: bool, size_multiple: int = 1, fixed_batch: int | None = None
    ) -> EngineConfig:
        """``fixed_batch``: the graph was exported for exactly that batch (size rules of SwinIR, HAT, DAT), so
        the optimization profile's N is that batch whatever the recipe says (no other batch can run)."""
        shapes = [section.min_shape, section.opt_shape, section.max_shape]
        if fixed_batch is not None:
            shapes = [(fixed_batch, *tuple(s)[1:]) for s in shapes]
        profile = ProfileShapes.from_nhw(*shapes, multiple=max(1, size_multiple))
        return cls(
            profile=profile,
            workspace_bytes=int(section.workspace_mb) << 20,
            sparse_weights=plan_has_2of4 if section.sparse_weights is None else bool(section.sparse_weights),
            hardware_compatibility=section.hardware_compatibility,
            version_compatible=section.version_compatible,
            timing_cache_dir=section.timing_cache_dir,
            required=section.required,
        )

    def builder_settings(self, trt_major: int, trt_version: str | None = None) -> BuilderSettings:
        if trt_major not in SUPPORTED_MAJORS:
            raise BackendUnavailable(
                f"TensorRT {trt_version or trt_major} is not supported (srdeploy builds with TensorRT 10 or 11)",
                "install srdeploy[tensorrt-cu12] or [tensorrt-cu13] (TensorRT >= 10; README: TensorRT) "
                "on a machine with an NVIDIA GPU",
            )
        level = HARDWARE_LEVELS.get(self.hardware_compatibility)
        if level is None:
            raise RecipeError(f"unknown tensorrt.hardware_compatibility '{self.hardware_compatibility}'", "see recipe")
        needed = MIN_VERSION_FOR_LEVEL.get(level)
        if needed and trt_version and version_tuple(trt_version)[:2] < needed:
            raise BackendUnavailable(
                f"tensorrt.hardware_compatibility={self.hardware_compatibility} needs TensorRT >= "
                f"{needed[0]}.{needed[1]}, found {trt_version}",
                "upgrade TensorRT or use ampere_plus / none",
            )
        flags = []
        if self.sparse_weights:
            flags.append("SPARSE_WEIGHTS")
        if self.version_compatible:
            flags.append("VERSION_COMPATIBLE")
        return BuilderSettings(
            trt_major=trt_major,
            network_flags=("STRONGLY_TYPED",) if trt_major == 10 else (),
            builder_flags=tuple(flags),
            memory_pool_limits=(("WORKSPACE", self.workspace_bytes),),
            builder_optimization_level=self.builder_optimization_level,
            hardware_compatibility_level=level,
            engine_host_code_allowed=self.version_compatible,
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(asdict(self), profile=self.profile.as_dict())


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:4])


def _sanitize(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.")[:80] or "unknown"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "srdeploy" / "trt"


def timing_cache_path(
    gpu_name: str, compute_capability: tuple[int, int], trt_version: str, cache_dir: str | os.PathLike[str] | None
) -> Path:
    """One timing cache per GPU model, compute capability and TensorRT version (a safe filename)."""
    folder = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    major, minor = compute_capability
    return folder / f"{_sanitize(gpu_name)}_sm{major}{minor}_trt{_sanitize(trt_version)}.timing-cache"


def engine_stem(tier_name: str | None) -> str:
    return "engine" if tier_name is None else f"tier-{_sanitize(str(tier_name))}"


def engine_metadata(
    config: EngineConfig,
    settings: BuilderSettings,
    *,
    trt_version: str,
    gpu_name: str,
    compute_capability: tuple[int, int],
    onnx_sha256: str = "",
    onnx_props: dict[str, str] | None = None,
    sparsity: dict[str, list[str]] | None = None,
    build_seconds: float | None = None,
) -> dict[str, Any]:
    """The JSON written beside every engine: what it was built from, with what, for which GPU."""
    props = onnx_props or {}
    cc = f"{compute_capability[0]}.{compute_capability[1]}"
    sm = f"sm_{compute_capability[0]}{compute_capability[1]}"
    runs_on = {"none": f"{sm} GPUs", "ampere_plus": "Ampere and newer GPUs (sm_80+)"}.get(
        config.hardware_compatibility, f"{sm} GPUs of any model"
    )
    versions = f"TensorRT {trt_version.split('.')[0]}.x >= {trt_version}" if config.version_compatible else trt_version
    return dict(
        format=METADATA_FORMAT,
        tensorrt_version=trt_version,
        gpu_name=gpu_name,
        compute_capability=cc,
        srdeploy_version=__version__,
        profiles=[config.profile.as_dict()],
        flags=dict(network=list(settings.network_flags), builder=list(settings.builder_flags)),
        workspace_bytes=config.workspace_bytes,
        builder_optimization_level=settings.builder_optimization_level,
        hardware_compatibility=config.hardware_compatibility,
        version_compatible=config.version_compatible,
        runs_on=f"{runs_on} with TensorRT {versions}",
        sparse_weights=config.sparse_weights,
        sparsity=dict(sparsity or {}),
        recipe_digest=props.get("srdeploy.recipe_digest", ""),
        plan_sha256=props.get("srdeploy.plan_sha256", ""),
        tier=dict(index=props.get("srdeploy.tier"), name=props.get("srdeploy.tier_name")),
        onnx_sha256=onnx_sha256,
        build_seconds=None if build_seconds is None else round(build_seconds, 2),
    )


def compatibility_problems(meta: dict[str, Any], trt_version: str, compute_capability: tuple[int, int]) -> list[str]:
    """Why an engine (by its metadata) cannot run here; empty when it can."""
    problems = []
    built = str(meta.get("tensorrt_version", ""))
    if meta.get("version_compatible"):
        same_major = version_tuple(built)[:1] == version_tuple(trt_version)[:1]
        if not same_major or version_tuple(trt_version) < version_tuple(built):
            problems.append(f"built version-compatible with TensorRT {built}; this is {trt_version}")
    elif built != trt_version:
        problems.append(f"built with TensorRT {built}; this is {trt_version} (rebuild, or build version_compatible)")
    here = compute_capability[0] + compute_capability[1] / 10
    cc = str(meta.get("compute_capability", "0.0"))
    level = meta.get("hardware_compatibility", "none")
    if level == "ampere_plus" and here < 8.0:
        problems.append(f"built for Ampere+ GPUs; this GPU is sm_{compute_capability[0]}{compute_capability[1]}")
    elif level != "ampere_plus" and cc != f"{compute_capability[0]}.{compute_capability[1]}":
        problems.append(
            f"built for compute capability {cc}; this GPU has {compute_capability[0]}.{compute_capability[1]}"
        )
    return problems


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dumps(meta: dict[str, Any]) -> str:
    return json.dumps(meta, indent=1, sort_keys=True) + "\n"


def read_engine_metadata(engine_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The JSON written beside ``engine_path`` (same stem), or None."""
    path = Path(engine_path).with_suffix(".json")
    return json.loads(path.read_text()) if path.is_file() else None
