"""The backend registry: which runtimes execute emitted graphs, what artifact each runs, how to get it.

A backend module exposes ``capabilities() -> Capabilities`` and a runner class with the life cycle of
backends.base.RunnerBase (activate / infer / deactivate). Modules are imported only when used, so
``import srdeploy`` never imports TensorRT, CUDA or OpenVINO.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from srdeploy.backends.base import Capabilities, Runner
from srdeploy.errors import BackendUnavailable
from srdeploy.interrupts import reraise_pending


@dataclass(frozen=True)
class BackendSpec:
    name: str
    module: str
    runner: str  # class name in ``module``
    artifact: str  # what it runs: "onnx" (a profile's graph) or "engine" (a TensorRT plan built from it)
    summary: str
    install: str  # how to get it


BACKENDS: dict[str, BackendSpec] = {
    b.name: b
    for b in (
        BackendSpec(
            "onnxruntime",
            "srdeploy.backends.ort",
            "OrtRunner",
            "onnx",
            "ONNX Runtime (CPU; CUDA / TensorRT execution providers where installed)",
            "pip install onnxruntime (a dependency of srdeploy)",
        ),
        BackendSpec(
            "openvino",
            "srdeploy.backends.openvino",
            "OpenVinoRunner",
            "onnx",
            "OpenVINO CPU plugin (fp32 float regions; INT8 convolutions from the Q/DQ graph)",
            "pip install 'srdeploy[openvino]'",
        ),
        BackendSpec(
            "tensorrt",
            "srdeploy.backends.tensorrt",
            "TrtRunner",
            "engine",
            "TensorRT engines on an NVIDIA GPU (unverified here: no TensorRT on the development machines)",
            "pip install 'srdeploy[tensorrt-cu12]' (or [tensorrt-cu13]; README: TensorRT) "
            "on a machine with an NVIDIA GPU",
        ),
    )
}


def get_backend(name: str) -> BackendSpec:
    try:
        return BACKENDS[name]
    except KeyError:
        raise BackendUnavailable(f"unknown backend '{name}'", f"use one of: {', '.join(BACKENDS)}") from None


def capabilities(name: str) -> Capabilities:
    spec = get_backend(name)
    try:
        module = importlib.import_module(spec.module)
    except ImportError as exc:
        reraise_pending()
        return Capabilities(name, False, f"{spec.module} cannot be imported ({exc}); {spec.install}")
    return module.capabilities()


def make_runner(backend: str, path: Any, **options: Any) -> Runner:
    """A runner of ``backend`` for the artifact at ``path`` (not yet activated)."""
    spec = get_backend(backend)
    caps = capabilities(backend)
    if not caps.available:
        raise BackendUnavailable(f"backend '{backend}' is not available: {caps.reason}", spec.install)
    cls = getattr(importlib.import_module(spec.module), spec.runner)
    return cls(path, **options)
