"""The bundled reference models: present, loadable by name, better than bicubic."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from srdeploy.data.degrade import bicubic_upscale
from srdeploy.data.sets import load_pairs
from srdeploy.models import load_model
from srdeploy.models.zoo import REFERENCE_MODELS, ZOO_DIR, model_card
from srdeploy.validate.metrics import psnr_y

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(REFERENCE_MODELS))
def test_reference_model_beats_bicubic_on_an_eval_image(name: str) -> None:
    model = load_model(name)
    arch, hparams = REFERENCE_MODELS[name]
    assert model.arch == arch and model.scale == hparams["scale"]
    pair = next(p for p in load_pairs("eval", model.scale) if p.name == "ocv_building")
    with torch.no_grad():
        sr = model.module(torch.from_numpy(pair.lr.transpose(2, 0, 1).copy())[None])[0].numpy().transpose(1, 2, 0)
    gain = psnr_y(sr, pair.hr, model.scale) - psnr_y(bicubic_upscale(pair.lr, model.scale), pair.hr, model.scale)
    assert gain > 0.5, f"{name}: only {gain:.2f} dB above bicubic"
    card = model_card(name)
    assert card["eval"]["mean"]["psnr_y"] > card["eval"]["mean"]["bicubic_psnr_y"]
    assert (ZOO_DIR / f"{name}.safetensors").stat().st_size < 8_000_000


def test_eval_command_on_one_small_image(tmp_path: Path) -> None:
    shutil.copy(REPO / "calib_data" / "eval" / "ocv_butterfly.png", tmp_path / "b.png")
    exe = Path(sys.executable).parent / "srdeploy"
    out = subprocess.run(
        [str(exe), "eval", "--model", "edsr_baseline_x2", "--dataset", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "200", "PATH": ""},
    )
    assert out.returncode == 0, out.stderr
    assert "b " in out.stdout or "│ b" in out.stdout
    assert "mean" in out.stdout


def test_model_cards_are_generated_from_measurements() -> None:
    text = (REPO / "docs" / "MODEL_CARDS.md").read_text()
    for card_path in sorted(ZOO_DIR.glob("*.json")):
        card = json.loads(card_path.read_text())
        assert f"## {card['name']}" in text
        assert f"{card['eval']['mean']['psnr_y']:.2f}" in text
