"""The trt-profile (FP16) graph loads in ONNX Runtime without constant-folding warnings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from srdeploy.backends.ort import OrtRunner, disabled_optimizers

WARNING = "constant fold"


def test_trt_graph_loads_quietly_and_computes_the_same(good_build: Path, capfd: pytest.CaptureFixture) -> None:
    path = good_build / "trt" / "model.onnx"
    x = np.random.default_rng(0).random((1, 3, 20, 24), dtype=np.float32)
    capfd.readouterr()
    plain = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if WARNING not in capfd.readouterr().err:
        pytest.skip("this ONNX Runtime folds the FP16 bias scale itself")
    expected = plain.run(None, {plain.get_inputs()[0].name: x})[0]
    runner = OrtRunner(path, threads=1).activate()
    try:
        got = runner.infer(x)
    finally:
        runner.deactivate()
    assert WARNING not in capfd.readouterr().err
    # the bias stays float (as in the simulation and in TensorRT) instead of ORT's int32 rounding of it:
    # the outputs differ at FP16 rounding level only
    np.testing.assert_allclose(got, expected, atol=5e-4)


def test_fp32_graphs_keep_every_optimizer(good_build: Path) -> None:
    assert disabled_optimizers(good_build / "ort" / "model.onnx") == []  # int8 fusion needs the bias quantizer
    assert "WeightBiasQuantization" in disabled_optimizers(good_build / "trt" / "model.onnx")
