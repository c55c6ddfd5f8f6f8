"""TensorRT backend: engine build, inspection and a runner. Importing this module imports neither
tensorrt nor CUDA; every function imports them when called and raises BackendUnavailable (with
the install hint) where they are missing.

The builder settings come from trt_config.EngineConfig (strongly typed networks on TensorRT 10,
the only mode on 11; no precision flags). ``build_engine`` writes ``engine.plan`` (or
``tier-<k>.plan``), ``<stem>.json`` (trt_config.engine_metadata) and ``<stem>.build.log``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srdeploy.backends.base import Capabilities
from srdeploy.backends.trt_config import (
    SUPPORTED_MAJORS,
    BuilderSettings,
    EngineBuildError,
    EngineConfig,
    compatibility_problems,
    dumps,
    engine_metadata,
    engine_stem,
    file_sha256,
    read_engine_metadata,
    timing_cache_path,
    version_tuple,
)
from srdeploy.backends.trt_report import layers_from_engine_json, parse_sparsity_log
from srdeploy.errors import BackendUnavailable
from srdeploy.fsutil import atomic_write_bytes, atomic_write_text

INSTALL_HINT = (
    "install srdeploy[tensorrt] on a machine with an NVIDIA GPU (TensorRT 10 or 11 and a CUDA build of torch)"
)
_KEEP_SEVERITIES = ("INTERNAL_ERROR", "ERROR", "WARNING", "INFO")


@dataclass(frozen=True)
class EngineArtifacts:
    engine_path: Path
    metadata_path: Path
    log_path: Path
    metadata: dict[str, Any]
    sparsity: dict[str, list[str]]


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except (ImportError, OSError) as exc:  # OSError: bindings present, libnvinfer missing
        raise BackendUnavailable(f"TensorRT is not importable ({str(exc)[:160]})", INSTALL_HINT) from exc
    return trt


def cuda_device() -> tuple[str, tuple[int, int]]:
    """(GPU name, compute capability) of the current CUDA device, via torch."""
    try:
        import torch
    except ImportError as exc:
        raise BackendUnavailable("torch is not importable", INSTALL_HINT) from exc
    if not torch.cuda.is_available():
        why = "this torch is a CPU-only build" if torch.version.cuda is None else "no CUDA device is visible"
        raise BackendUnavailable(f"CUDA is unavailable: {why}", INSTALL_HINT)
    index = torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return torch.cuda.get_device_name(index), (int(major), int(minor))


def capabilities() -> Capabilities:
    try:
        trt = import_tensorrt()
        gpu, cc = cuda_device()
    except BackendUnavailable as exc:
        return Capabilities("tensorrt", False, str(exc))
    if version_tuple(trt.__version__)[0] not in SUPPORTED_MAJORS:
        return Capabilities("tensorrt", False, f"TensorRT {trt.__version__} is not 10.x or 11.x — {INSTALL_HINT}")
    return Capabilities(
        "tensorrt",
        True,
        f"TensorRT {trt.__version__} on {gpu} (sm_{cc[0]}{cc[1]})",
        int8=cc >= (6, 1),
        sparse_2of4=cc >= (8, 0),
        fp16=cc >= (5, 3),
    )


def _make_logger(trt: Any) -> Any:
    class CaptureLogger(trt.ILogger):  # type: ignore[misc, name-defined]
        """Keeps INFO and above (the sparsity report is INFO) for the build log."""

        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.lines: list[tuple[str, str]] = []

        def log(self, severity: Any, msg: str) -> None:
            name = getattr(severity, "name", str(severity)).rsplit(".", 1)[-1]
            if name in _KEEP_SEVERITIES or "Sparsity" in msg:
                self.lines.append((name, msg))

    return CaptureLogger()


def _enum(trt: Any, enum: str, member: str) -> Any:
    try:
        return getattr(getattr(trt, enum), member)
    except AttributeError:
        raise BackendUnavailable(f"TensorRT {trt.__version__} has no {enum}.{member}", INSTALL_HINT) from None


def apply_settings(trt: Any, builder_config: Any, settings: BuilderSettings) -> None:
    """Set flags, memory pools and levels on an IBuilderConfig, by name."""
    for flag in settings.builder_flags:
        builder_config.set_flag(_enum(trt, "BuilderFlag", flag))
    for pool, limit in settings.memory_pool_limits:
        builder_config.set_memory_pool_limit(_enum(trt, "MemoryPoolType", pool), int(limit))
    builder_config.builder_optimization_level = settings.builder_optimization_level
    builder_config.hardware_compatibility_level = _enum(
        trt, "HardwareCompatibilityLevel", settings.hardware_compatibility_level
    )
    builder_config.profiling_verbosity = _enum(trt, "ProfilingVerbosity", settings.profiling_verbosity)


def network_flags(trt: Any, settings: BuilderSettings) -> int:
    flags = 0
    for name in settings.network_flags:
        flags |= 1 << int(_enum(trt, "NetworkDefinitionCreationFlag", name))
    return flags


def _parser_errors(parser: Any) -> list[str]:
    out = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        try:
            out.append(f"node '{err.node_name()}' ({err.node_operator()}): {err.desc()}")
        except Exception:  # older bindings: the error's own string
            out.append(str(err))
    return out


def _onnx_props(path: Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def _use_timing_cache(builder_config: Any, path: Path, notes: list[str]) -> None:
    data = b""
    if path.is_file():
        data = path.read_bytes()
        notes.append(f"timing cache: {path} ({len(data)} bytes)")
    cache = builder_config.create_timing_cache(data)
    if cache is None and data:
        notes.append(f"timing cache {path} unreadable: starting a new one")
        cache = builder_config.create_timing_cache(b"")
    builder_config.set_timing_cache(cache, False)


def _save_timing_cache(builder_config: Any, path: Path, notes: list[str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, bytes(builder_config.get_timing_cache().serialize()))
    except OSError as exc:  # a read-only cache folder must not fail the build
        notes.append(f"timing cache not saved to {path}: {exc}")


def _write_log(path: Path, lines: list[tuple[str, str]], notes: list[str]) -> None:
    text = "".join(f"[{s}] {m}\n" for s, m in lines) + "".join(f"[srdeploy] {n}\n" for n in notes)
    atomic_write_text(path, text)


def _lint_hint(onnx_path: Path) -> str:
    """What the static checker says about a graph TensorRT refused."""
    from srdeploy.passes.lint_trt import lint_trt

    try:
        errors = lint_trt(onnx_path).errors
    except Exception:  # the hint must never hide the TensorRT error
        errors = ()
    found = "; ".join(f"{f.rule} at {f.node}" for f in errors[:3])
    return (
        f"lint_trt finds: {found}" if found else f"`srdeploy lint-trt {onnx_path}` lists the TensorRT rules it breaks"
    )


def build_engine(
    onnx_path: str | os.PathLike[str],
    config: EngineConfig,
    out_dir: str | os.PathLike[str],
    tier_name: str | int | None = None,
) -> EngineArtifacts:
    """Parse ``onnx_path`` (a trt-profile QDQ graph), build and serialize an engine into ``out_dir``."""
    trt = import_tensorrt()
    gpu, cc = cuda_device()
    version = str(trt.__version__)
    settings = config.builder_settings(version_tuple(version)[0], version)
    if config.hardware_compatibility == "ampere_plus" and cc < (8, 0):
        raise BackendUnavailable(f"ampere_plus engines need sm >= 8.0; this GPU is sm_{cc[0]}{cc[1]}", INSTALL_HINT)
    onnx_path, out = Path(onnx_path), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    logger = _make_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt, settings))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = _parser_errors(parser)
        raise EngineBuildError(
            f"TensorRT {version} cannot parse {onnx_path}: {'; '.join(errors[:5]) or 'no parser message'}",
            _lint_hint(onnx_path),
        )
    if network.num_inputs != 1:
        raise EngineBuildError(f"{onnx_path} has {network.num_inputs} inputs; SR engines take one", "re-export it")
    builder_config = builder.create_builder_config()
    apply_settings(trt, builder_config, settings)
    profile = builder.create_optimization_profile()
    p = config.profile
    profile.set_shape(network.get_input(0).name, p.min, p.opt, p.max)
    builder_config.add_optimization_profile(profile)
    notes: list[str] = []
    cache_path = timing_cache_path(gpu, cc, version, config.timing_cache_dir)
    _use_timing_cache(builder_config, cache_path, notes)
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, builder_config)
    seconds = time.perf_counter() - t0
    stem = engine_stem(None if tier_name is None else str(tier_name))
    log_path = out / f"{stem}.build.log"
    if serialized is None:
        _write_log(log_path, logger.lines, notes)
        errors = [m for s, m in logger.lines if s in ("ERROR", "INTERNAL_ERROR")]
        raise EngineBuildError(
            f"TensorRT {version} failed to build {onnx_path.name}: {' | '.join(errors[-3:]) or 'no error logged'}",
            f"build log: {log_path}; {_lint_hint(onnx_path)}",
        )
    _save_timing_cache(builder_config, cache_path, notes)
    _write_log(log_path, logger.lines, notes)
    engine_path = out / f"{stem}.plan"
    atomic_write_bytes(engine_path, bytes(serialized))
    sparsity = parse_sparsity_log(m for _, m in logger.lines)
    meta = engine_metadata(
        config,
        settings,
        trt_version=version,
        gpu_name=gpu,
        compute_capability=cc,
        onnx_sha256=file_sha256(onnx_path),
        onnx_props=_onnx_props(onnx_path),
        sparsity=sparsity,
        build_seconds=seconds,
    )
    meta_path = out / f"{stem}.json"
    atomic_write_text(meta_path, dumps(meta))
    return EngineArtifacts(engine_path, meta_path, log_path, meta, sparsity)


def load_engine(engine_path: str | os.PathLike[str]) -> tuple[Any, Any, Any]:
    """(tensorrt module, runtime, ICudaEngine); refuses engines built for another GPU/TensorRT."""
    trt = import_tensorrt()
    _, cc = cuda_device()
    path = Path(engine_path)
    if not path.is_file():
        raise BackendUnavailable(f"engine not found: {path}", "build it: srdeploy build --set tensorrt.required=true")
    meta = read_engine_metadata(path) or {}
    problems = compatibility_problems(meta, str(trt.__version__), cc) if meta else []
    if problems:
        raise BackendUnavailable(f"{path} cannot run here: {'; '.join(problems)}", "rebuild the engine on this machine")
    runtime = trt.Runtime(_make_logger(trt))
    if meta.get("version_compatible"):
        runtime.engine_host_code_allowed = True
    engine = runtime.deserialize_cuda_engine(path.read_bytes())
    if engine is None:
        raise BackendUnavailable(f"TensorRT {trt.__version__} could not load {path}", "rebuild the engine here")
    return trt, runtime, engine


def inspect_engine(engine_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Per-layer dicts from IEngineInspector (JSON, DETAILED), shapes resolved at the opt profile."""
    trt, _runtime, engine = load_engine(engine_path)
    context = engine.create_execution_context()
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            context.set_input_shape(name, tuple(engine.get_tensor_profile_shape(name, 0)[1]))
    inspector = engine.create_engine_inspector()
    inspector.execution_context = context  # formats are "N/A due to dynamic shapes" without it
    return layers_from_engine_json(inspector.get_engine_information(trt.LayerInformationFormat.JSON))


from srdeploy.backends.trt_runner import TrtRunner  # noqa: E402  (re-export; it imports from here lazily)

__all__ = ["EngineArtifacts", "TrtRunner", "build_engine", "capabilities", "inspect_engine", "load_engine"]
