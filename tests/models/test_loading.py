"""Checkpoint wrappers as released: params_ema before params, and a clear error for unknown wrappers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from official_layouts import basicsr_rrdbnet_shapes, random_state

from srdeploy.errors import ModelError
from srdeploy.models import load_model
from srdeploy.models.loading import unwrap_state_dict


def test_params_ema_wins_over_params_as_in_real_esrgan(tmp_path: Path) -> None:
    shapes = basicsr_rrdbnet_shapes(1, 8, 4)
    ema, raw = random_state(shapes, seed=1), random_state(shapes, seed=2)
    torch.save({"params": raw, "params_ema": ema}, tmp_path / "both.pth")
    model = load_model(tmp_path / "both.pth")
    assert torch.equal(model.module.state_dict()["conv_first.weight"], ema["conv_first.weight"])
    torch.save({"params": raw}, tmp_path / "params.pth")
    model = load_model(tmp_path / "params.pth")
    assert torch.equal(model.module.state_dict()["conv_first.weight"], raw["conv_first.weight"])


def test_a_wrapper_without_known_keys_lists_the_keys_found() -> None:
    inner = random_state(basicsr_rrdbnet_shapes(1, 8, 4))
    with pytest.raises(ModelError, match=r"keys found: 'net_g', 'iter'") as e:
        unwrap_state_dict({"net_g": inner, "iter": 5}, "training_state.pth")
    assert "params_ema" in str(e.value) and "\n" not in str(e.value)


def test_a_training_state_without_weights_lists_its_keys(tmp_path: Path) -> None:
    torch.save({"epoch": 3, "iter": 1000, "optimizers": [], "schedulers": []}, tmp_path / "1000.state")
    with pytest.raises(ModelError, match=r"keys found: 'epoch', 'iter', 'optimizers', 'schedulers'"):
        load_model(tmp_path / "1000.state")
