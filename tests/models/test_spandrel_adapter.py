"""The spandrel adapter, with a stand-in spandrel module (the real one needs torchvision)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch

from srdeploy.errors import ModelError
from srdeploy.models import load_model
from srdeploy.models.loading import save_checkpoint


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 12, 3, padding=1)
        self.ps = torch.nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ps(self.conv(x))


def fake_spandrel(channels: int = 3) -> types.ModuleType:
    mod = types.ModuleType("spandrel")

    class Loader:
        def load_from_state_dict(self, sd):
            net = Net()
            net.load_state_dict(sd)
            return types.SimpleNamespace(
                model=net,
                scale=2,
                input_channels=channels,
                output_channels=3,
                architecture=types.SimpleNamespace(id="FakeSR"),
                size_requirements=types.SimpleNamespace(multiple_of=2),
            )

    mod.ModelLoader = Loader
    return mod


def test_loads_through_spandrel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_checkpoint(Net(), tmp_path / "net.pt")
    monkeypatch.setitem(sys.modules, "spandrel", fake_spandrel())
    model = load_model(path, arch="spandrel")
    assert model.arch == "spandrel:FakeSR" and model.scale == 2 and model.size_multiple == 2
    assert model.module(torch.zeros(1, 3, 4, 4)).shape == (1, 3, 8, 8)
    roles = model.layer_roles()
    assert roles["conv.weight"] in ("head", "tail")


def test_non_rgb_models_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_checkpoint(Net(), tmp_path / "net.pt")
    monkeypatch.setitem(sys.modules, "spandrel", fake_spandrel(channels=1))
    with pytest.raises(ModelError, match="RGB"):
        load_model(path, arch="spandrel")


def test_missing_spandrel_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_checkpoint(Net(), tmp_path / "net.pt")
    monkeypatch.setitem(sys.modules, "spandrel", None)  # import fails
    with pytest.raises(ModelError, match=r"srdeploy\[zoo\]"):
        load_model(path, arch="spandrel")
