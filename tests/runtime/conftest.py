"""Session-scoped tiny build folders and images for the runtime tests (see helpers.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .helpers import make_build, make_checkpoint


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("builds")
    return make_build(root, "tiny", make_checkpoint(root / "tiny.safetensors", 1))


@pytest.fixture(scope="session")
def wide_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("builds_wide")
    return make_build(root, "wide", make_checkpoint(root / "wide.safetensors", 4))


@pytest.fixture(scope="session")
def textured() -> np.ndarray:
    """A 40x52 RGB uint8 crop of a real photo (odd sizes on purpose)."""
    from PIL import Image

    img = Image.open(Path(__file__).parents[2] / "calib_data" / "eval" / "ocv_baboon.png").convert("RGB")
    return np.asarray(img)[60:100, 70:122].copy()


@pytest.fixture(scope="session")
def tiered_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three tiers and a calibrated selector (AdaBM image-to-bit mapping)."""
    root = tmp_path_factory.mktemp("builds_tiered")
    ckpt = make_checkpoint(root / "tiny.safetensors", 1)
    return make_build(root, "tiered", ckpt, method="adabm", adaptive={"enabled": True})
