"""TensorRT backend on Polygraphy: capabilities, engine build, loading and inspection (the runner
is trt_runner.TrtRunner, re-exported here).

UNVERIFIED: written against Polygraphy 0.53's loaders and TensorRT 10/11's documented API, and
never run against a real TensorRT: the machines it was developed on have neither TensorRT (the
PyPI wheel is a placeholder that downloads from NVIDIA's index) nor a GPU. tools/gpu_check.sh and
``pytest -m gpu`` are the checks to run on a machine with both.

The build is Polygraphy's ``NetworkFromOnnxPath`` -> ``CreateConfig`` -> ``EngineBytesFromNetwork``
(settings from trt_config.EngineConfig via trt_loaders.py), with its timing cache loaded and saved
per GPU + compute capability + TensorRT version. ``build_engine`` writes ``engine.plan`` (or
``tier-<k>.plan``) atomically, ``<stem>.json`` (trt_config.engine_metadata) and ``<stem>.build.log``
(TensorRT's INFO and above, including the "(Sparsity)" report). Engines load with Polygraphy's
``EngineFromBytes`` after the metadata says this GPU and TensorRT can run them.

Importing this module imports neither tensorrt, Polygraphy's TensorRT or CUDA parts, nor torch.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srdeploy.backends.base import Capabilities
from srdeploy.backends.cuda_device import cuda_device
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
from srdeploy.backends.trt_loaders import captured_log, create_config, errors_in, network_loader, usable_cache_path
from srdeploy.backends.trt_report import layers_from_engine_json, parse_sparsity_log
from srdeploy.errors import BackendUnavailable
from srdeploy.fsutil import atomic_write_bytes, atomic_write_text
from srdeploy.interrupts import reraise_pending

INSTALL_HINT = (
    "install srdeploy[tensorrt-cu12] or [tensorrt-cu13] by the driver's CUDA major (README: TensorRT) "
    "on a machine with an NVIDIA GPU and its driver"
)


@dataclass(frozen=True)
class EngineArtifacts:
    engine_path: Path
    metadata_path: Path
    log_path: Path
    metadata: dict[str, Any]
    sparsity: dict[str, list[str]]


@dataclass(frozen=True)
class SerializedEngine:
    """An engine built in memory, with what it was built from and its build log."""

    data: bytes
    config: EngineConfig
    settings: BuilderSettings
    trt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]
    log: list[str]
    seconds: float


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except (ImportError, OSError) as exc:  # OSError: bindings present, libnvinfer missing
        reraise_pending()
        raise BackendUnavailable(f"the tensorrt module is not importable ({str(exc)[:160]})", INSTALL_HINT) from exc
    return trt


def capabilities() -> Capabilities:
    """What this machine can do with TensorRT; ``reason`` says exactly what is missing."""
    try:
        trt = import_tensorrt()
    except BackendUnavailable as exc:
        return Capabilities("tensorrt", False, str(exc))
    version = str(trt.__version__)
    if version_tuple(version)[0] not in SUPPORTED_MAJORS:
        return Capabilities("tensorrt", False, f"TensorRT {version} is not 10.x or 11.x — {INSTALL_HINT}")
    try:
        gpu, cc = cuda_device()
    except BackendUnavailable as exc:
        return Capabilities("tensorrt", False, f"TensorRT {version} is installed, but {exc}")
    return Capabilities(
        "tensorrt",
        True,
        f"TensorRT {version} on {gpu} (sm_{cc[0]}{cc[1]})",
        int8=cc >= (6, 1),
        sparse_2of4=cc >= (8, 0),
        fp16=cc >= (5, 3),
    )


def enum_resolver(trt: Any) -> Any:
    def resolve(enum: str, member: str) -> Any:
        try:
            return getattr(getattr(trt, enum), member)
        except AttributeError:
            raise BackendUnavailable(f"TensorRT {trt.__version__} has no {enum}.{member}", INSTALL_HINT) from None

    return resolve


def onnx_input_name(path: Path) -> str:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise EngineBuildError(f"{path} has {len(inputs)} inputs {inputs}; SR engines take one", "re-export it")
    return inputs[0]


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


def build_error(onnx_path: Path, version: str, lines: list[str], log_path: Path | None) -> EngineBuildError:
    errors = errors_in(lines)
    parsing = any("parse ONNX" in e for e in errors)
    what = "cannot parse" if parsing else "failed to build an engine from"
    where = f"build log: {log_path}; " if log_path else ""
    detail = " | ".join(e for e in errors if "parse ONNX" not in e and "Invalid Engine" not in e)[-600:]
    return EngineBuildError(
        f"TensorRT {version} {what} {onnx_path}: {detail or 'no error logged'}", where + _lint_hint(onnx_path)
    )


def serialize_engine(onnx_path: Path, config: EngineConfig, notes: list[str] | None = None) -> SerializedEngine:
    """Parse a trt-profile QDQ graph and build a serialized engine in memory (raises EngineBuildError)."""
    from polygraphy.backend.trt import EngineBytesFromNetwork
    from polygraphy.exception import PolygraphyException

    trt = import_tensorrt()
    gpu, cc = cuda_device()
    version = str(trt.__version__)
    settings = config.builder_settings(version_tuple(version)[0], version)
    if config.hardware_compatibility == "ampere_plus" and cc < (8, 0):
        raise BackendUnavailable(f"ampere_plus engines need sm >= 8.0; this GPU is sm_{cc[0]}{cc[1]}", INSTALL_HINT)
    notes = [] if notes is None else notes
    cache = usable_cache_path(timing_cache_path(gpu, cc, version, config.timing_cache_dir), notes)
    builder_config = create_config(settings, config.profile, onnx_input_name(onnx_path), cache, enum_resolver(trt))
    save_cache = None if cache is None else str(cache)
    network = network_loader(onnx_path, settings)
    build = EngineBytesFromNetwork(network, config=builder_config, save_timing_cache=save_cache)
    with captured_log(verbose=True) as lines:
        t0 = time.perf_counter()
        try:
            data = bytes(build())
        except PolygraphyException:
            data = b""
        seconds = time.perf_counter() - t0
    log = [*lines, *(f"[srdeploy] {n}" for n in notes)]
    return SerializedEngine(data, config, settings, version, gpu, cc, log, seconds)


def _onnx_props(path: Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def _kept_log(lines: list[str]) -> str:
    """TensorRT INFO (Polygraphy [V]) and above; Polygraphy's own progress lines stay too."""
    return "".join(f"{line}\n" for line in lines if not line.startswith(("[X]", "[S]", "[U]")))


def build_engine(
    onnx_path: str | os.PathLike[str],
    config: EngineConfig,
    out_dir: str | os.PathLike[str],
    tier_name: str | int | None = None,
) -> EngineArtifacts:
    """Build an engine for ``onnx_path`` into ``out_dir``: engine, metadata JSON and build log."""
    onnx_path, out = Path(onnx_path), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = engine_stem(None if tier_name is None else str(tier_name))
    log_path = out / f"{stem}.build.log"
    built = serialize_engine(onnx_path, config)
    atomic_write_text(log_path, _kept_log(built.log))
    if not built.data:
        raise build_error(onnx_path, built.trt_version, built.log, log_path)
    engine_path = out / f"{stem}.plan"
    # Written here, not with Polygraphy's SaveBytes: an interrupted write must never leave a truncated engine.
    atomic_write_bytes(engine_path, built.data)
    sparsity = parse_sparsity_log(built.log)
    meta = engine_metadata(
        config,
        built.settings,
        trt_version=built.trt_version,
        gpu_name=built.gpu_name,
        compute_capability=built.compute_capability,
        onnx_sha256=file_sha256(onnx_path),
        onnx_props=_onnx_props(onnx_path),
        sparsity=sparsity,
        build_seconds=built.seconds,
    )
    meta_path = out / f"{stem}.json"
    atomic_write_text(meta_path, dumps(meta))
    return EngineArtifacts(engine_path, meta_path, log_path, meta, sparsity)


def deserialize(data: bytes, source: str) -> Any:
    """ICudaEngine from serialized bytes, through Polygraphy's EngineFromBytes."""
    from polygraphy.backend.trt import EngineFromBytes
    from polygraphy.exception import PolygraphyException

    trt = import_tensorrt()
    with captured_log() as lines:
        try:
            return EngineFromBytes(data)()
        except PolygraphyException:
            detail = " | ".join(errors_in(lines))[-400:]
            raise BackendUnavailable(
                f"TensorRT {trt.__version__} could not load {source}: {detail}", "rebuild the engine here"
            ) from None


def load_engine(engine_path: str | os.PathLike[str]) -> Any:
    """ICudaEngine of a saved engine; refuses engines built for another GPU or TensorRT version."""
    trt = import_tensorrt()
    _, cc = cuda_device()
    path = Path(engine_path)
    if not path.is_file():
        raise BackendUnavailable(f"engine not found: {path}", "build it: srdeploy build --set tensorrt.required=true")
    meta = read_engine_metadata(path) or {}
    problems = compatibility_problems(meta, str(trt.__version__), cc) if meta else []
    if problems:
        raise BackendUnavailable(f"{path} cannot run here: {'; '.join(problems)}", "rebuild the engine on this machine")
    return deserialize(path.read_bytes(), str(path))


def inspect_engine(engine_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Per-layer dicts from IEngineInspector (JSON, DETAILED), shapes resolved at the opt profile."""
    trt = import_tensorrt()
    engine = load_engine(engine_path)
    context = engine.create_execution_context()
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            context.set_input_shape(name, tuple(engine.get_tensor_profile_shape(name, 0)[1]))
    inspector = engine.create_engine_inspector()
    inspector.execution_context = context  # formats are "N/A due to dynamic shapes" without it
    return layers_from_engine_json(inspector.get_engine_information(trt.LayerInformationFormat.JSON))


from srdeploy.backends.trt_runner import TrtRunner  # noqa: E402  (re-export; it imports from here lazily)

__all__ = [
    "EngineArtifacts",
    "TrtRunner",
    "build_engine",
    "capabilities",
    "cuda_device",
    "inspect_engine",
    "load_engine",
    "serialize_engine",
]
