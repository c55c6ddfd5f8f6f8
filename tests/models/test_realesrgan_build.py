"""A whole build (export, calibration, QDQ rewrite, validation, reload) of small random RRDBNet and
Compact checkpoints in Real-ESRGAN's released file format, through the recipe API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from official_layouts import basicsr_rrdbnet_shapes, compact_shapes, random_state

from srdeploy.pipeline import build
from srdeploy.recipe import recipe_from_dict
from srdeploy.validate.cli_support import validate_folder


@pytest.fixture(scope="module")
def hr_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    folder = tmp_path_factory.mktemp("hr")
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(((54, 62), (50, 70))):  # odd LR sizes at x2 (27x31, 25x35)
        base = rng.random((h, w, 3))
        Image.fromarray((255 * (0.5 * base + 0.5 * np.roll(base, 1, 1))).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def _recipe(ckpt: Path, hr: Path) -> object:
    return recipe_from_dict(
        {
            "name": ckpt.stem,
            "model": {"path": str(ckpt)},
            "calib": {"folder": str(hr), "patches": 4, "patch_size": 12},
            "quant": {"method": "mse"},
            "validate": {"dataset": str(hr), "reference": "fp32", "thresholds": {"min_agreement_db": 30}},
            "tensorrt": {"enabled": False},
        }
    )


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rrdbnet_x2", "compact_x4"])
def test_build_and_revalidate_a_real_esrgan_format_checkpoint(kind: str, tmp_path: Path, hr_folder: Path) -> None:
    if kind == "rrdbnet_x2":
        sd = random_state(basicsr_rrdbnet_shapes(2, 16, 8, in_ch=12), std=0.05)
        wrapped, arch, scale = {"params_ema": sd}, "rrdbnet", 2
    else:
        sd = random_state(compact_shapes(3, 16, 4), std=0.1)
        wrapped, arch, scale = {"params": sd}, "compact", 4
    torch.save(wrapped, tmp_path / f"{kind}.pth")
    result = build(_recipe(tmp_path / f"{kind}.pth", hr_folder), tmp_path / "out")
    assert result.passed, result.report["failures"]
    assert result.report["images_evaluated"] == 2
    assert result.report["model"] == dict(name=kind, arch=arch, scale=scale)
    body = [x.weight for x in result.plan.layers if x.role == "body"]
    assert body and all(x.quantized for x in result.plan.layers if x.role == "body")
    ort_model = onnx.load(str(result.out_dir / "ort" / "model.onnx"))
    ints = {i.name for i in ort_model.graph.initializer if i.data_type == onnx.TensorProto.INT8}
    assert set(body) <= ints  # every body conv runs on int8 weights
    # the build folder alone reproduces the model (deploy form rebuilt from model.json)
    report, _ = validate_folder(result.out_dir, str(hr_folder), None, None, None, 30.0, None, None, tmp_path / "again")
    assert report["verdict"] == "pass", report["failures"]
