"""OpenVINO backend (CPU plugin): run an ONNX graph or an OpenVINO IR, and report which convs run in INT8.

Imports openvino lazily (``pip install 'srdeploy[openvino]'``): ``import srdeploy`` never loads it.
Runners follow the activate / infer / deactivate life of backends/base.py; ``infer`` activates on
first use. The CPU plugin's default float precision is bf16 on CPUs with AVX512_BF16 or AMX, which
changes the numbers of every float layer; the runner asks for f32 unless told otherwise, so its
output matches ONNX Runtime's and the validation's fp32 references.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from srdeploy.backends.base import Capabilities
from srdeploy.errors import BackendUnavailable, SrdeployError
from srdeploy.interrupts import reraise_pending
from srdeploy.sigstack import keep_signal_stack

INSTALL_HINT = "pip install 'srdeploy[openvino]'"
PRECISIONS = ("f32", "bf16", "f16")
INT8_PRECISIONS = ("i8", "u8")


def _import_openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        reraise_pending()
        raise BackendUnavailable(f"OpenVINO is not installed ({exc})", INSTALL_HINT) from exc
    return openvino


def capabilities() -> Capabilities:
    try:
        ov = _import_openvino()
        with keep_signal_stack():
            devices = ov.Core().available_devices
    except BackendUnavailable as exc:
        return Capabilities("openvino", False, str(exc))
    except Exception as exc:  # a broken install raises its own types at Core()
        return Capabilities("openvino", False, f"OpenVINO cannot start: {exc} — reinstall: {INSTALL_HINT}")
    if "CPU" not in devices:
        return Capabilities("openvino", False, f"OpenVINO sees no CPU device (devices: {devices})")
    return Capabilities("openvino", True, f"OpenVINO {ov.get_version()}, CPU plugin", int8=True, fp16=True)


def compile_config(threads: int | None, precision: str, perf_counters: bool = False) -> dict[str, Any]:
    """CPU plugin settings: one stream (latency), ``threads`` inference threads, float precision."""
    if precision not in PRECISIONS:
        raise SrdeployError(f"unknown OpenVINO precision {precision!r}", f"use one of {', '.join(PRECISIONS)}")
    config: dict[str, Any] = {
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": "1",
        "INFERENCE_PRECISION_HINT": precision,
        "PERF_COUNT": "YES" if perf_counters else "NO",
    }
    if threads:
        config["INFERENCE_NUM_THREADS"] = str(int(threads))
    return config


class OpenVinoRunner:
    """One compiled model on the CPU plugin. ``infer``: (N,3,H,W) float32 -> (N,3,sH,sW) float32.

    ``model_path``: .onnx or .xml (IR, .bin beside it). N, H and W stay dynamic as exported.
    ``precision``: float inference precision ('f32' default, 'bf16', 'f16'); integer Q/DQ regions
    run in INT8 either way. ``perf_counters=True`` keeps per-layer timings (``profile()``).
    Other ``options`` are passed to ``compile_model`` as CPU plugin properties.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        threads: int | None = None,
        name: str | None = None,
        precision: str = "f32",
        perf_counters: bool = False,
        **options: Any,
    ) -> None:
        self.path = Path(model_path)
        if not self.path.is_file():
            raise BackendUnavailable(f"model not found: {self.path}", "pass an .onnx or OpenVINO .xml file")
        self.name = name or f"openvino:{self.path.stem}"
        self.threads = threads
        self.config = {**compile_config(threads, precision, perf_counters), **options}
        self._compiled: Any = None
        self._request: Any = None

    # ------------------------------------------------------------------ life cycle
    def activate(self) -> OpenVinoRunner:
        if self._request is not None:
            return self
        ov = _import_openvino()
        try:
            with keep_signal_stack():
                core = ov.Core()
                model = core.read_model(str(self.path))
                self._compiled = core.compile_model(model, "CPU", self.config)
                self._request = self._compiled.create_infer_request()
        except Exception as exc:
            raise BackendUnavailable(
                f"OpenVINO cannot load {self.path}: {str(exc).strip().splitlines()[0][:200]}",
                "check that the file is a complete srdeploy output (rebuild it if it was truncated) "
                f"and that OpenVINO is recent ({INSTALL_HINT})",
            ) from exc
        return self

    def deactivate(self) -> None:
        with keep_signal_stack():
            self._request = None
            self._compiled = None

    def __enter__(self) -> OpenVinoRunner:
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    @property
    def active(self) -> bool:
        return self._request is not None

    # ------------------------------------------------------------------ inference
    def infer(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4 or x.shape[1] != 3:
            raise SrdeployError(f"input of shape {tuple(x.shape)} is not (N,3,H,W)", "pass NCHW RGB float32 batches")
        self.activate()
        with keep_signal_stack():
            result = self._request.infer([np.ascontiguousarray(x, dtype=np.float32)])
        # The request reuses its output buffer on the next call: copy it out.
        return np.array(result[0], dtype=np.float32, copy=True)

    def profile(self) -> list[LayerTime]:
        """Per-layer timings of the last ``infer`` (needs ``perf_counters=True``)."""
        if self._request is None or self.config.get("PERF_COUNT") != "YES":
            raise SrdeployError("no performance counters on this runner", "create it with perf_counters=True")
        return [
            LayerTime(p.node_name, p.node_type, p.exec_type, p.real_time.total_seconds() * 1e3)
            for p in self._request.profiling_info
            if str(p.status).endswith("EXECUTED")
        ]

    def runtime_layers(self) -> list[RuntimeLayer]:
        """The execution graph: what the CPU plugin fused each layer into and at what precision."""
        self.activate()
        layers = []
        for op in self._compiled.get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            get = lambda key, info=info: str(info[key].astype(str)) if key in info else ""  # noqa: E731
            names = [n for n in get("originalLayersNames").split(",") if n]
            layers.append(
                RuntimeLayer(
                    op.get_friendly_name(),
                    get("layerType"),
                    get("runtimePrecision").lower(),
                    get("primitiveType"),
                    names,
                )
            )
        return layers


@dataclass(frozen=True)
class LayerTime:
    name: str
    layer_type: str
    exec_type: str  # the kernel, e.g. brgconv_avx512_I8, jit_avx512_FP32
    ms: float


@dataclass(frozen=True)
class RuntimeLayer:
    name: str
    layer_type: str  # Convolution, Eltwise, Reorder, DepthToSpace, Subgraph, ...
    precision: str  # runtimePrecision, lower case: i8, u8, f32, bf16, f16
    kernel: str  # primitiveType, e.g. brgconv_avx512_I8 (empty for layers without one)
    original: list[str]  # source-graph node names fused into this layer


@dataclass(frozen=True)
class Int8Report:
    """Which source convs (by weight name) execute in an INT8 kernel on the CPU plugin."""

    quantized_convs: list[str]  # convs whose weight comes through a DequantizeLinear
    int8_convs: list[str]  # convs executed by an I8/U8 convolution
    float_convs: dict[str, str]  # conv weight -> runtime precision for the others
    layer_types: dict[str, int] = field(default_factory=dict)  # runtime layer type -> count

    @property
    def all_int8(self) -> bool:
        return set(self.quantized_convs) <= set(self.int8_convs)

    @property
    def quantized_in_float(self) -> list[str]:
        return sorted(set(self.quantized_convs) - set(self.int8_convs))


def int8_report(model_path: str | os.PathLike[str], threads: int | None = 1, precision: str = "f32") -> Int8Report:
    """Compile ``model_path`` (.onnx) and map each source Conv to the precision it runs at.

    Conv nodes are named ``<module path>:Conv`` by the exporter; the report keys them by weight
    name (``<module path>.weight``), the plan's key.
    """
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    dq_outputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    conv_weight = {n.name: _weight_name(n.input[1]) for n in model.graph.node if n.op_type == "Conv"}
    quantized = [
        conv_weight[n.name]
        for n in model.graph.node
        if n.op_type == "Conv" and len(n.input) > 1 and n.input[1] in dq_outputs
    ]
    with OpenVinoRunner(model_path, threads=threads, precision=precision) as runner:
        layers = runner.runtime_layers()
    precision_of: dict[str, str] = {}
    for layer in layers:
        if layer.layer_type != "Convolution":
            continue
        for original in layer.original:
            if original in conv_weight:
                precision_of[conv_weight[original]] = layer.precision
    int8 = sorted(w for w, p in precision_of.items() if p in INT8_PRECISIONS)
    others = {w: precision_of.get(w, "not found") for w in sorted(conv_weight.values()) if w not in int8}
    types = Counter(layer.layer_type for layer in layers)
    return Int8Report(sorted(quantized), int8, others, dict(sorted(types.items())))


def _weight_name(conv_weight_input: str) -> str:
    """The plan's key: the initializer name, which the DQ output extends with ``.dequantized``."""
    return conv_weight_input.removesuffix(".dequantized")
