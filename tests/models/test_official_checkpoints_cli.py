"""As a user: ESRGAN / Real-ESRGAN checkpoints in their released layouts (``params_ema``, ``params``, old
``model.N.``) through ``srdeploy build`` and ``srdeploy validate``; a random checkpoint (far worse than
bicubic) fails the sanity check unless ``validate.reference: fp32``, which warns instead."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from clitest import run_cli
from official_layouts import OldESRGAN, Shapes, basicsr_rrdbnet_shapes, compact_shapes, random_state


def init_like_training(shapes: Shapes, gain: float, seed: int = 0) -> dict[str, torch.Tensor]:
    """Weights with variance gain^2 / fan_in (as the upstream initialisations), small biases, PReLU
    slopes 0.25: a random network whose activations neither explode nor vanish, like a trained one."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        if len(shape) == 4:
            out[key] = torch.randn(shape, generator=g) * gain / math.sqrt(shape[1] * shape[2] * shape[3])
        elif key.endswith(".bias"):
            out[key] = torch.randn(shape, generator=g) * 0.01
        else:
            out[key] = torch.full(shape, 0.25)
    return out


def checkpoint(layout: str) -> object:
    if layout == "params_ema":  # RealESRGAN_x4plus-like, 6 blocks, 32 features (BasicSR: kaiming x 0.1)
        return {"params_ema": init_like_training(basicsr_rrdbnet_shapes(6, 32, 16), 0.1 * math.sqrt(2))}
    if layout == "params":  # realesr-general-x4v3-like Compact
        return {"params": init_like_training(compact_shapes(8, 32, 4), 1.0)}
    if layout == "random":  # N(0, 0.1) everywhere: about 10 dB against HR
        return {"params": random_state(compact_shapes(8, 32, 4), std=0.1)}
    torch.manual_seed(0)
    return OldESRGAN(32, 6, 16).state_dict()  # ESRGAN's own model.N.* file


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    ws = tmp_path_factory.mktemp("official")
    rng = np.random.default_rng(0)
    (ws / "hr").mkdir()
    for i, (h, w) in enumerate(((64, 72), (68, 60))):
        base = Image.fromarray((255 * rng.random((h // 8, w // 8, 3))).astype(np.uint8))
        base.resize((w, h), Image.Resampling.BICUBIC).save(ws / "hr" / f"{i}.png")  # smooth: bicubic does well
    return ws


def recipe(ws: Path, name: str, reference: str) -> Path:
    path = ws / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nmodel: {{path: {name}.pth}}\n"
        "calib: {folder: hr, patches: 16, patch_size: 12}\n"
        "quant: {method: mse}\n"
        "tensorrt: {enabled: false}\n"
        f"validate: {{dataset: hr, reference: {reference}}}\n"
    )
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("layout", "arch"), [("params_ema", "rrdbnet"), ("params", "compact"), ("old", "rrdbnet")])
def test_released_layouts_build_and_validate_from_the_command_line(workspace: Path, layout: str, arch: str) -> None:
    name = f"ckpt_{layout}"
    torch.save(checkpoint(layout), workspace / f"{name}.pth")
    out = run_cli("build", "--recipe", str(recipe(workspace, name, "fp32")), cwd=workspace)
    assert out.code == 0, out.out + out.err
    build = workspace / "builds" / name
    report = json.loads((build / "report.json").read_text())
    assert report["model"]["arch"] == arch and report["model"]["scale"] == 4
    assert report["verdict"] == "pass" and report["reference"] == "fp32"
    assert not report["failures"]
    assert all(s["agreement_min_db"] >= 40 for s in report["summary"] if s["kind"] == "deployment")
    again = run_cli("validate", str(build), cwd=workspace)
    assert again.code == 0, again.out + again.err


@pytest.mark.slow
@pytest.mark.parametrize("reference", ["hr", "fp32"])
def test_a_random_checkpoint_is_not_a_pass_against_hr(workspace: Path, reference: str) -> None:
    name = f"ckpt_random_{reference}"
    torch.save(checkpoint("random"), workspace / f"{name}.pth")
    # agreement off: this network amplifies one-level rounding differences (chaotic random weights)
    args = ("--recipe", str(recipe(workspace, name, reference)), "--set", "validate.thresholds.min_agreement_db=null")
    out = run_cli("build", *args, cwd=workspace)
    published = workspace / "builds" / (name if reference == "fp32" else f"{name}.failed")
    report = json.loads((published / "report.json").read_text())
    fp32 = next(s["psnr_y"] for s in report["summary"] if s["execution"] == "fp32")
    assert fp32 < report["bicubic"]["psnr_y"] - 1.0  # the premise: the model is far worse than bicubic
    if reference == "hr":
        assert out.code == 1, out.out + out.err
        assert report["verdict"] == "fail" and any("below bicubic" in f for f in report["failures"])
        assert not (workspace / "builds" / name).exists()
    else:  # GAN/perceptual models are judged against their fp32 output: a loud warning, not a failure
        assert out.code == 0, out.out + out.err
        assert report["verdict"] == "pass" and any("below bicubic" in w for w in report["warnings"])
        assert "below bicubic" in out.out
