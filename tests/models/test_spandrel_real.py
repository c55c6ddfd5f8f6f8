"""The real spandrel (no fake), where it is importable: installed as the README says (``pip install
'srdeploy[zoo]' && pip install --no-deps spandrel``), imported with srdeploy's contained torchvision stand-in.
Random-initialised networks of spandrel's SR families load, export with dynamic sizes and agree with PyTorch.
Nothing is installed here: without spandrel these tests skip."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from srdeploy.errors import ModelError
from srdeploy.export import export_onnx
from srdeploy.models import load_model
from srdeploy.models.spandrel_import import import_spandrel


def _spandrel():
    try:
        return import_spandrel()
    except Exception as exc:  # not installed, or not importable beside this torch
        pytest.skip(f"spandrel not importable: {type(exc).__name__}: {exc}")


def _networks() -> dict[str, Callable[[], torch.nn.Module]]:
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.PLKSR import PLKSR

    return {
        "ESRGAN": lambda: ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=2),
        "Compact": lambda: Compact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=2, upscale=2),
        "PLKSR": lambda: PLKSR(dim=16, n_blocks=2, upscaling_factor=2, kernel_size=7),
    }


def test_spandrel_imports_without_leaving_a_torchvision_behind() -> None:
    had_torchvision = "torchvision" in sys.modules
    spandrel = _spandrel()
    assert spandrel.MAIN_REGISTRY.get("ESRGAN") is not None
    if not had_torchvision and getattr(sys.modules.get("torchvision"), "__srdeploy_stand_in__", False):
        pytest.fail("the torchvision stand-in outlived the import of spandrel")


def test_the_stand_in_explains_itself_when_a_non_sr_architecture_calls_it() -> None:
    _spandrel()
    lama = sys.modules.get("spandrel.architectures.LaMa.__arch.LaMa")
    if lama is None or not getattr(lama.rotate, "__qualname__", "").startswith("_needs_torchvision"):
        pytest.skip("spandrel was imported with the real torchvision")
    with pytest.raises(ModelError, match="torchvision"):
        lama.rotate(torch.zeros(1, 3, 4, 4), 90)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["ESRGAN", "Compact", "PLKSR"])
def test_spandrel_network_loads_exports_and_agrees_with_pytorch(arch: str, tmp_path: Path) -> None:
    _spandrel()
    torch.manual_seed(0)
    torch.save(_networks()[arch]().state_dict(), tmp_path / "net.pth")
    model = load_model(tmp_path / "net.pth", arch="spandrel")
    assert model.arch == f"spandrel:{arch}" and model.scale == 2
    path = export_onnx(model, tmp_path / "fp32.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in ((13, 19), (21, 10)):  # odd sizes, neither the traced one
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h))
        (got,) = sess.run(None, {"input": x.numpy()})
        with torch.no_grad():
            ref = model.module(x).numpy()
        assert got.shape == (1, 3, 2 * h, 2 * w)
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)
