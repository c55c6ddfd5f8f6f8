"""Upscaler(backend='openvino') and `srdeploy upscale --backend openvino` on the tiny build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from srdeploy.backends import openvino
from srdeploy.errors import BackendUnavailable, BuildFolderError, SrdeployError
from srdeploy.runtime.upscaler import Upscaler

pytestmark = pytest.mark.skipif(
    not openvino.capabilities().available, reason=f"OpenVINO unavailable: {openvino.capabilities().reason}"
)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def ir_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny build with the `openvino` profile (its own layout, written as ONNX and as IR)."""
    from runtime.helpers import make_build, make_checkpoint

    root = tmp_path_factory.mktemp("ir_build")
    return make_build(root, "b", make_checkpoint(root / "tiny.safetensors", 1), profiles=("ort", "openvino"))


def test_ort_graph_on_openvino_matches_onnx_runtime(tiny_build: Path, textured: np.ndarray) -> None:
    ov_up = Upscaler.from_build(tiny_build, backend="openvino", threads=1)
    assert ov_up.profile == "ort" and ov_up.providers == ["OpenVINO CPU"]
    assert len(ov_up.notes) == 1 and "no 'openvino' profile" in ov_up.notes[0] and "'ort'" in ov_up.notes[0]
    got = ov_up.upscale(textured)
    want = Upscaler.from_build(tiny_build, threads=1).upscale(textured)
    assert got.shape == want.shape == (80, 104, 3) and got.dtype == np.uint8
    assert _psnr(got, want) > 40.0  # integer kernels of two runtimes: a few levels apart at most
    # Tiles are batched (N > 1) and overlap more than the receptive field: same pixels as whole.
    tiled = Upscaler.from_build(tiny_build, backend="openvino", threads=1, tile=16).upscale(textured)
    assert ov_up.last_stats is not None and ov_up.last_stats.tiles == 1
    np.testing.assert_array_equal(tiled, got)


def test_openvino_profile_is_preferred_when_built(ir_build: Path, tiny_build: Path, textured: np.ndarray) -> None:
    up = Upscaler.from_build(ir_build, backend="openvino", threads=1)
    assert up.profile == "openvino" and up.notes == []
    on_ort = Upscaler.from_build(ir_build, threads=1, profile="openvino")  # the same graph on ONNX Runtime
    assert _psnr(up.upscale(textured), on_ort.upscale(textured)) > 40.0


def test_bad_backend_choices(tiny_build: Path, ir_build: Path) -> None:
    with pytest.raises(BackendUnavailable, match="unknown backend"):
        Upscaler.from_build(tiny_build, backend="tvm")
    with pytest.raises(BuildFolderError, match="no 'openvino' model"):
        Upscaler.from_build(tiny_build, profile="openvino", backend="openvino")
    with pytest.raises(SrdeployError, match="providers"):
        Upscaler.from_build(tiny_build, backend="openvino", providers=["CPUExecutionProvider"])


def test_cli_upscale_backend_openvino(tiny_build: Path, textured: np.ndarray, tmp_path: Path) -> None:
    from srdeploy.cli import app

    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(textured).save(src)
    res = CliRunner().invoke(app, ["upscale", str(src), str(dst), "--build", str(tiny_build), "--backend", "openvino"])
    assert res.exit_code == 0, res.output
    assert Image.open(dst).size == (104, 80)
    assert "no 'openvino' profile" in res.output.replace("\n", " ")
