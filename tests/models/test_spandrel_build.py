"""A cheap build (4 calibration patches, one validation image) of each small spandrel network, through the normal
recipe path (``model: {path: x.pth, arch: spandrel}``): it calibrates, deploys, validates (simulation vs ONNX
Runtime agreement is one of the checks), records the size rules, and the build folder then runs in the app
runtime at odd sizes, whole and tiled. Slow: a build is half a minute to a minute on 2 cores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from clitest import run_cli
from spandrel_nets import CONV_ARCHS, SCALE, WINDOW_ARCHS, save_network

from srdeploy.models.deploy_form import load_deploy_model
from srdeploy.runtime.padding import run_padded
from srdeploy.runtime.upscaler import Upscaler

pytestmark = pytest.mark.slow


def _build(arch: str, root: Path) -> Path:
    from srdeploy.pipeline import build
    from srdeploy.recipe import recipe_from_dict

    recipe = recipe_from_dict(
        {
            "name": arch,
            "model": {"path": str(save_network(arch, root)), "arch": "spandrel"},
            "calib": {"patches": 4, "patch_size": 16},
            # random weights are far below bicubic against HR: judge the deployment against fp32
            "validate": {"max_images": 1, "reference": "fp32"},
            "tensorrt": {"enabled": False},
            "export": {"profiles": ["ort"]},
        }
    )
    return build(recipe, root / arch).out_dir


@pytest.mark.parametrize("arch", CONV_ARCHS + WINDOW_ARCHS)
def test_spandrel_network_builds_validates_and_runs_at_odd_sizes(arch: str, tmp_path: Path) -> None:
    out = _build(arch, tmp_path)
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "pass", report["failed_checks"]
    model = load_deploy_model(out)  # the folder alone rebuilds the model (srdeploy validate / emit)
    assert model.arch == f"spandrel:{arch}"
    tiers = json.loads((out / "tiers.json").read_text())
    meta = json.loads((out / "model.json").read_text())
    recorded = None if model.size_rules.trivial else model.size_rules.to_json()
    assert tiers.get("size_rules") == meta.get("size_rules") == recorded
    x = np.random.default_rng(1).random((19, 13, 3), dtype=np.float32)  # below 16 and odd
    fp32 = Upscaler(out / "fp32.onnx", threads=1, size_rules=model.size_rules).upscale(x)

    def torch_infer(b: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.module(torch.from_numpy(b)).numpy()

    ref = run_padded(torch_infer, x.transpose(2, 0, 1)[None], model.size_rules, SCALE)[0]
    np.testing.assert_allclose(fp32, np.clip(ref.transpose(1, 2, 0), 0, 1), atol=1e-4)  # the Upscaler clips
    up = Upscaler.from_build(out, threads=1)
    whole, tiled = up.upscale(x), Upscaler.from_build(out, threads=1, tile=8, overlap=4).upscale(x)
    assert whole.shape == tiled.shape == (19 * SCALE, 13 * SCALE, 3)
    # the INT8 graph, padded, gives a picture near its fp32 one on this noise image (accuracy proper is the
    # build's validation above); measured 27.9 dB for SPAN, the lowest of the eight
    assert 10 * np.log10(1 / np.mean((whole - fp32) ** 2)) > 20


def test_srdeploy_validate_reruns_on_a_spandrel_build(tmp_path: Path) -> None:
    out = _build("SwinIR", tmp_path)
    result = run_cli("validate", str(out), "--dataset", "eval", "--max-images", "1", cwd=tmp_path)
    assert result.code == 0, result.err
    assert json.loads((tmp_path / "SwinIR.validate" / "validate.json").read_text())["verdict"] == "pass"
