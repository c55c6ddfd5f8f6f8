"""srdeploy's engine settings translated into Polygraphy loaders, and Polygraphy's log captured.

``BuilderSettings`` (trt_config.py) names TensorRT enum members as strings; here they become
Polygraphy objects: ``NetworkFromOnnxPath`` (strongly typed on TensorRT 10; on 11 every network is
strongly typed and the creation flag is deprecated, so it is not set), ``CreateConfig`` (sparse
weights, version compatibility, hardware compatibility level, workspace pool, builder optimization
level, DETAILED profiling verbosity for the inspector, the optimization profile, the timing cache)
and ``Profile``. Enum members are looked up through ``resolve`` so that constructing the loaders
needs no TensorRT: Polygraphy imports it only when a loader is called. No precision flags are ever
passed (explicit quantization: INT8 comes from the graph's Q/DQ, FP16 from its float dtype).

Unverified against a real TensorRT here: these machines have neither TensorRT nor a GPU.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from srdeploy.backends.trt_config import BuilderSettings, EngineBuildError, ProfileShapes

EnumResolver = Callable[[str, str], Any]
_POLYGRAPHY_LOGGER = "Polygraphy"


def polygraphy_profile(profile: ProfileShapes, input_name: str) -> Any:
    from polygraphy.backend.trt import Profile

    return Profile().add(input_name, min=profile.min, opt=profile.opt, max=profile.max)


def network_loader(onnx_path: str | os.PathLike[str], settings: BuilderSettings) -> Any:
    """Polygraphy loader that parses the ONNX file into a network (lazy: nothing runs yet)."""
    from polygraphy.backend.trt import NetworkFromOnnxPath

    return NetworkFromOnnxPath(str(onnx_path), strongly_typed="STRONGLY_TYPED" in settings.network_flags)


def create_config_kwargs(
    settings: BuilderSettings,
    profile: ProfileShapes,
    input_name: str,
    timing_cache: Path | None,
    resolve: EnumResolver,
) -> dict[str, Any]:
    """Keyword arguments for Polygraphy's ``CreateConfig``; precision flags stay at their False default."""
    unknown = set(settings.builder_flags) - {"SPARSE_WEIGHTS", "VERSION_COMPATIBLE"}
    if unknown:  # a flag CreateConfig has no argument for would be dropped silently
        raise EngineBuildError(
            f"builder flags without a CreateConfig argument: {sorted(unknown)}",
            "this is a bug in srdeploy's TensorRT settings (trt_config.EngineConfig.builder_settings)",
        )
    return dict(
        profiles=[polygraphy_profile(profile, input_name)],
        sparse_weights="SPARSE_WEIGHTS" in settings.builder_flags,
        version_compatible="VERSION_COMPATIBLE" in settings.builder_flags,
        memory_pool_limits={resolve("MemoryPoolType", pool): int(n) for pool, n in settings.memory_pool_limits},
        builder_optimization_level=settings.builder_optimization_level,
        hardware_compatibility_level=resolve("HardwareCompatibilityLevel", settings.hardware_compatibility_level),
        profiling_verbosity=resolve("ProfilingVerbosity", settings.profiling_verbosity),
        load_timing_cache=None if timing_cache is None else str(timing_cache),
    )


def create_config(
    settings: BuilderSettings,
    profile: ProfileShapes,
    input_name: str,
    timing_cache: Path | None,
    resolve: EnumResolver,
) -> Any:
    from polygraphy.backend.trt import CreateConfig

    with captured_log():  # CreateConfig logs an INFO line about TF32 on construction
        return CreateConfig(**create_config_kwargs(settings, profile, input_name, timing_cache, resolve))


def usable_cache_path(path: Path, notes: list[str]) -> Path | None:
    """``path`` if its folder is writable: Polygraphy locks ``<cache>.lock`` beside it to read and
    to save, which fails in a read-only folder, and a cache must never fail a build."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        notes.append(f"timing cache folder {path.parent} unusable ({exc}): building without a cache")
        return None
    if not os.access(path.parent, os.W_OK):
        notes.append(f"timing cache folder {path.parent} is read-only: building without a cache")
        return None
    notes.append(f"timing cache: {path} ({path.stat().st_size if path.is_file() else 0} bytes before the build)")
    return path


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.NOTSET)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def captured_log(verbose: bool = False) -> Iterator[list[str]]:
    """Collect Polygraphy's messages (its TensorRT logger forwards into it) instead of printing them.

    ``verbose`` keeps VERBOSE messages too: Polygraphy logs TensorRT's INFO at VERBOSE, and the
    build's "(Sparsity) ..." report is a TensorRT INFO message. Lines keep Polygraphy's severity
    prefix ("[V]", "[I]", "[W]", "[E]", "[!]" for the message of a raised PolygraphyException).
    """
    from polygraphy.logger import G_LOGGER

    lines: list[str] = []
    py_logger = logging.getLogger(_POLYGRAPHY_LOGGER)
    saved = (G_LOGGER.module_severity, G_LOGGER.use_python_logging_system, G_LOGGER.colors)
    saved_py = (py_logger.propagate, py_logger.level)
    handler = _Collect(lines)
    py_logger.addHandler(handler)
    # Level 1, not NOTSET: NOTSET would defer to the root logger's WARNING and drop TensorRT's INFO.
    py_logger.propagate, py_logger.level = False, 1
    # colors off: with them on, Polygraphy prints a hint about the 'colored' package on stdout.
    G_LOGGER.use_python_logging_system, G_LOGGER.colors = True, False
    G_LOGGER.module_severity = G_LOGGER.VERBOSE if verbose else G_LOGGER.INFO
    try:
        yield lines
    finally:
        py_logger.removeHandler(handler)
        G_LOGGER.module_severity = saved[0]
        G_LOGGER.use_python_logging_system, G_LOGGER.colors = saved[1], saved[2]
        py_logger.propagate, py_logger.level = saved_py


def errors_in(lines: list[str]) -> list[str]:
    """Error lines of a captured log, without their prefix."""
    return [line[4:].strip() for line in lines if line.startswith(("[E]", "[!]"))]
