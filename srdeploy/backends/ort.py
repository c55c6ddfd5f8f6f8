"""ONNX Runtime backend: sessions with full graph optimizations, inference, latency, and a count
of quantized convs that ONNX Runtime really fused into integer kernels."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srdeploy.backends.base import Capabilities, RunnerBase
from srdeploy.errors import BackendUnavailable
from srdeploy.interrupts import reraise_pending

INTEGER_CONV_OPS = ("QLinearConv", "ConvInteger", "NhwcQLinearConv")


def capabilities() -> Capabilities:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        reraise_pending()
        return Capabilities("onnxruntime", False, f"onnxruntime not importable: {exc}")
    return Capabilities("onnxruntime", True, f"providers: {', '.join(ort.get_available_providers())}", int8=True)


def session_options(threads: int | None = None, optimized_path: str | None = None, quiet: bool = True) -> object:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # INT8 QDQ graphs are only fast once fused; at the basic level they are slower than fp32.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    if optimized_path:
        opts.optimized_model_filepath = optimized_path
    if quiet:
        opts.log_severity_level = 3
    return opts


# ONNX Runtime's WeightBiasQuantization (BiasQuantization before 1.20) rewrites a float conv bias as int32 + DQ
# with scale = s_x * s_w. On an FP16 graph (the trt profile) that Mul is fp16, which has no CPU kernel, so
# constant folding fails and logs "can't constant fold Mul node '<conv>_scale'" per conv it touched. TensorRT
# keeps those biases in float, so leaving them as the graph has them is also what the profile means.
FP16_DISABLED_OPTIMIZERS = ("WeightBiasQuantization", "BiasQuantization")


def disabled_optimizers(model_path: str | os.PathLike[str]) -> list[str]:
    """ONNX Runtime graph transformers to turn off for this file: the bias quantizer on FP16 graphs."""
    import onnx

    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception:  # the session reports an unreadable file with its own message
        return []
    fp16 = any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    return list(FP16_DISABLED_OPTIMIZERS) if fp16 else []


def default_providers() -> list[str]:
    return ["CPUExecutionProvider"]


class OrtRunner(RunnerBase):
    """One InferenceSession, created on ``activate``. ``infer`` takes and returns NCHW float32.

    ``mem_arena=False`` turns ONNX Runtime's CPU arena off: every run then allocates its activations afresh
    (page faults on each large buffer). The app runtime and the benchmark tools keep the default (on): the
    runtime's calls are bounded by the tile budget (runtime/tiling.py), so the arena holds at most one call's
    activations. Measured 2026-12-08
    (AMD EPYC AVX-512 VNNI, 2 threads, ONNX Runtime 1.32.0, auto tiles), arena on vs off: EDSR-baseline x4 W8A8,
    1200x900 LR at x4, 6.4 / 7.0 s vs 7.5 / 8.0 s, peak RSS 493 vs 718 MB; 4000x3000 at x4 (130 tiles), 68.7 vs
    77.0 s, 1266 vs 1176 MB; the pruned SRResNet-BN x4 W8A8 at 1200x900, 10.8 / 10.5 s vs 25.6 / 23.6 s, 563 vs
    720 MB.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        threads: int | None = 2,
        providers: list[str] | None = None,
        name: str | None = None,
        mem_arena: bool = True,
    ) -> None:
        self.path = Path(model_path)
        self.name = name or self.path.stem
        self.threads, self.mem_arena = threads, mem_arena
        self.requested_providers = list(providers or default_providers())
        self.session: Any = None
        self.providers: list[str] = []

    def _load(self) -> None:
        import onnxruntime as ort

        opts = session_options(self.threads)
        opts.enable_cpu_mem_arena = self.mem_arena
        try:
            self.session = ort.InferenceSession(
                str(self.path),
                opts,
                providers=self.requested_providers,
                disabled_optimizers=disabled_optimizers(self.path),
            )
        except Exception as exc:
            raise BackendUnavailable(
                f"ONNX Runtime cannot load {self.path}: {str(exc).splitlines()[0][:200]}",
                "check that the file is a complete srdeploy output for this profile/provider "
                "(rebuild it if it was truncated)",
            ) from exc
        self.input_name = self.session.get_inputs()[0].name
        self.providers = list(self.session.get_providers())

    def _run(self, x: np.ndarray) -> np.ndarray:
        (y,) = self.session.run(None, {self.input_name: x})
        return np.asarray(y, dtype=np.float32)

    def _free(self) -> None:
        self.session = None


@dataclass(frozen=True)
class FusionReport:
    quantized_convs: int
    fused_integer_convs: int
    optimized_ops: dict[str, int]

    @property
    def all_fused(self) -> bool:
        return self.fused_integer_convs >= self.quantized_convs


def fusion_report(model_path: str | os.PathLike[str], threads: int = 1) -> FusionReport:
    """Count DQ-weight Convs in the file and integer conv kernels in ORT's optimized graph (the plan's convs:
    the identity entry conv of passes/nhwc_entry.py is left out of both; ``optimized_ops`` counts every op)."""
    import onnx
    import onnxruntime as ort

    from srdeploy.passes.nhwc_entry import is_entry_node

    model = onnx.load(str(model_path))
    dq_outputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    quantized = sum(
        1
        for n in model.graph.node
        if n.op_type == "Conv" and len(n.input) > 1 and n.input[1] in dq_outputs and not is_entry_node(n.name)
    )
    with tempfile.TemporaryDirectory() as tmp:
        opt_path = os.path.join(tmp, "optimized.onnx")
        # The NCHWc layout pass is CPU-specific and irrelevant to fusion; skip it so saving works.
        opts = session_options(threads, optimized_path=opt_path)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        optimized = onnx.load(opt_path)
    ops = Counter(n.op_type for n in optimized.graph.node)
    fused = sum(1 for n in optimized.graph.node if n.op_type in INTEGER_CONV_OPS and not is_entry_node(n.name))
    return FusionReport(quantized_convs=quantized, fused_integer_convs=fused, optimized_ops=dict(sorted(ops.items())))
