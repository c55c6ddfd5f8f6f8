"""Peer INT8 quantizers for tools/bench_cpu.py, each with its library defaults, calibrated on the
same LR patches srdeploy's build used: ONNX Runtime's quantize_static and NNCF (on the OpenVINO
model and on the ONNX model). Requirements: tools/requirements-bench.txt (nncf)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np


def quantize_static_defaults(fp32: Path, out: Path, patches: np.ndarray) -> tuple[Path, float]:
    """quantize_static with no options (QDQ, QInt8 activations and weights, per-tensor, MinMax)."""
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"input": patches[i : i + 1]} for i in range(len(patches))])

        def get_next(self) -> dict | None:
            return next(self.it, None)

    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    quantize_static(str(fp32), str(out), Reader())
    return out, time.perf_counter() - t0


def _dataset(patches: np.ndarray, feed_name: str | None = None) -> Any:
    """One patch per item; the ONNX backend feeds ORT, which wants {input name: array}."""
    import nncf

    items = [patches[i : i + 1] for i in range(len(patches))]
    return nncf.Dataset(items, None if feed_name is None else (lambda x: {feed_name: x}))


def nncf_openvino_defaults(fp32: Path, out_xml: Path, patches: np.ndarray) -> tuple[Path, float]:
    """nncf.quantize on the OpenVINO model read from fp32.onnx, saved as IR."""
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(fp32))
    t0 = time.perf_counter()
    quantized = nncf.quantize(model, _dataset(patches))
    secs = time.perf_counter() - t0
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out_xml))
    return out_xml, secs


def nncf_onnx_defaults(fp32: Path, out: Path, patches: np.ndarray) -> tuple[Path, float]:
    """nncf.quantize on the ONNX model: a QDQ ONNX graph that either runtime can run."""
    import nncf
    import onnx

    model = onnx.load(str(fp32))
    t0 = time.perf_counter()
    quantized = nncf.quantize(model, _dataset(patches, model.graph.input[0].name))
    secs = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(quantized, str(out))
    return out, secs
