"""OpenVINO backend on a tiny real build: agreement with ONNX Runtime, dynamic shapes, INT8 report.

Skipped (with the reason) where openvino is not installed; the dev extra installs it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from runtime.helpers import make_build, make_checkpoint

from srdeploy.backends import openvino as ovb
from srdeploy.backends.ort import OrtRunner
from srdeploy.errors import BackendUnavailable, SrdeployError

needs_openvino = pytest.mark.skipif(
    not ovb.capabilities().available, reason=f"OpenVINO unavailable: {ovb.capabilities().reason}"
)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ov_build")
    ckpt = make_checkpoint(root / "tiny.safetensors", 2, n_feats=16)
    return make_build(root, "tiny_ov", ckpt, profiles=("trt", "ort", "openvino"))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def _inputs() -> list[np.ndarray]:
    """Image-like inputs (neighbouring pixels averaged, like tests/srtest.patches), not white noise."""
    rng = np.random.default_rng(3)
    out = []
    for s in ((1, 3, 12, 16), (2, 3, 20, 8)):
        x = rng.random(s, dtype=np.float32)
        out.append((0.5 * x + 0.25 * np.roll(x, 1, 2) + 0.25 * np.roll(x, 1, 3)).astype(np.float32))
    return out


def test_import_srdeploy_does_not_import_openvino() -> None:
    code = "import sys, srdeploy, srdeploy.backends.openvino, srdeploy.bench\nprint('openvino' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_openvino_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # makes `import openvino` raise ImportError
    caps = ovb.capabilities()
    assert not caps.available and "srdeploy[openvino]" in caps.reason
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not used")
    with pytest.raises(BackendUnavailable, match=r"srdeploy\[openvino\]"):
        ovb.OpenVinoRunner(model).activate()


def test_bad_arguments_raise_srdeploy_errors(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="not found"):
        ovb.OpenVinoRunner(tmp_path / "missing.onnx")
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(SrdeployError, match="precision"):
        ovb.OpenVinoRunner(tmp_path / "m.onnx", precision="int4")


@needs_openvino
def test_truncated_model_is_a_clear_error(build: Path, tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes((build / "ort" / "model.onnx").read_bytes()[:2000])
    with pytest.raises(BackendUnavailable, match="cannot load"):
        ovb.OpenVinoRunner(bad).activate()


@needs_openvino
def test_fp32_agrees_with_onnx_runtime_at_dynamic_shapes(build: Path) -> None:
    ort = OrtRunner(build / "fp32.onnx", threads=1)
    with ovb.OpenVinoRunner(build / "fp32.onnx", threads=1) as runner:
        for x in _inputs():
            want = ort.infer(x)
            got = runner.infer(x)
            assert got.shape == want.shape == (x.shape[0], 3, 2 * x.shape[2], 2 * x.shape[3])
            assert got.dtype == np.float32
            assert _psnr(got, want) > 90.0  # same maths up to summation order
    assert not runner.active


@needs_openvino
def test_openvino_profile_computes_what_the_plan_says(build: Path) -> None:
    """The openvino layout quantizes only what OpenVINO quantizes, so OpenVINO reproduces the simulation."""
    from srdeploy.models.deploy_form import load_deploy_model
    from srdeploy.quant.plan_io import load_plan
    from srdeploy.quant.simulate import simulate

    plan, model = load_plan(build / "plan.json"), load_deploy_model(build)
    sim = simulate(model, plan, "openvino", 0)
    assert (build / "openvino" / "model.xml").is_file() and (build / "openvino" / "model.bin").is_file()
    with ovb.OpenVinoRunner(build / "openvino" / "model.onnx", threads=1) as runner:
        for x in _inputs():
            with torch.no_grad():
                want = sim(torch.from_numpy(x)).numpy()
            assert _psnr(runner.infer(x), want) > 60.0


@needs_openvino
def test_results_are_not_overwritten_by_the_next_call(build: Path) -> None:
    runner = ovb.OpenVinoRunner(build / "fp32.onnx", threads=1)
    a, b = _inputs()
    first = runner.infer(a[:1])  # infer activates on first use
    keep = first.copy()
    runner.infer(b[:1, :, :12, :16] * 0.5)
    np.testing.assert_array_equal(first, keep)
    runner.deactivate()
    assert not runner.active


@needs_openvino
def test_bf16_precision_changes_the_float_math(build: Path) -> None:
    x = _inputs()[0]
    f32 = ovb.OpenVinoRunner(build / "fp32.onnx", threads=1).infer(x)
    bf16 = ovb.OpenVinoRunner(build / "fp32.onnx", threads=1, precision="bf16").infer(x)
    ref = OrtRunner(build / "fp32.onnx", threads=1).infer(x)
    # Where the CPU has no bf16 the plugin falls back to f32: then both agree with ORT exactly.
    assert _psnr(f32, ref) >= _psnr(bf16, ref)


@needs_openvino
def test_int8_report_maps_quantized_convs_by_weight_name(build: Path) -> None:
    import onnx

    qdq = ovb.int8_report(build / "ort" / "model.onnx")
    graph = onnx.load(str(build / "ort" / "model.onnx")).graph
    weights_through_dq = {n.input[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    assert qdq.quantized_convs and set(qdq.quantized_convs) <= weights_through_dq
    assert all(w.endswith(".weight") for w in qdq.quantized_convs + list(qdq.float_convs))
    assert set(qdq.int8_convs) <= set(qdq.quantized_convs)
    assert qdq.int8_convs, f"no conv ran in INT8: {qdq.float_convs}"
    assert "head.0.weight" in qdq.float_convs  # the recipe leaves the head in float
    fp32 = ovb.int8_report(build / "fp32.onnx")
    assert fp32.quantized_convs == [] and fp32.int8_convs == []
    ran = set(qdq.int8_convs) | set(qdq.float_convs)
    entry = {w for w in ran if w.endswith(".nhwc_entry.weight")}  # the identity conv of passes/nhwc_entry.py
    assert len(entry) == 1 and set(fp32.float_convs) == ran - entry


@needs_openvino
def test_perf_counters_list_executed_layers(build: Path) -> None:
    with ovb.OpenVinoRunner(build / "ort" / "model.onnx", threads=1, perf_counters=True) as runner:
        runner.infer(_inputs()[0][:1])
        layers = runner.profile()
    assert any(t.layer_type == "Convolution" and "I8" in t.exec_type.upper() for t in layers)
    assert all(t.ms >= 0 for t in layers) and sum(t.ms for t in layers) > 0
    with pytest.raises(SrdeployError, match="perf_counters"):
        ovb.OpenVinoRunner(build / "fp32.onnx").activate().profile()


@needs_openvino
def test_ir_runs_like_the_onnx_graph(build: Path, tmp_path: Path) -> None:
    from srdeploy.backends.openvino_ir import onnx_to_ir

    xml = onnx_to_ir(build / "ort" / "model.onnx", tmp_path / "openvino" / "model.xml")
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    assert sorted(p.name for p in xml.parent.iterdir()) == ["model.bin", "model.xml"]  # no temp folder left
    x = _inputs()[1]
    from_onnx = ovb.OpenVinoRunner(build / "ort" / "model.onnx", threads=1).infer(x)
    from_ir = ovb.OpenVinoRunner(xml, threads=1).infer(x)
    # Same graph, same kernels: fp32 weights kept (no fp16 compression), so bit-identical.
    np.testing.assert_array_equal(from_ir, from_onnx)


def test_ir_bad_paths(tmp_path: Path) -> None:
    from srdeploy.backends.openvino_ir import onnx_to_ir

    with pytest.raises(SrdeployError, match="not found"):
        onnx_to_ir(tmp_path / "missing.onnx", tmp_path / "m.xml")
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(SrdeployError, match=r"\.xml"):
        onnx_to_ir(tmp_path / "m.onnx", tmp_path / "m.bin")
