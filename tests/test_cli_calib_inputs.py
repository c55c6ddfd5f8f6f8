"""Battery, calibration inputs: a build from calib.tensors and from LR images (calib.degradation: none), and the
one-line refusals (bad tensors, the float tier without HR)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from clitest import assert_kept, assert_one_error, run_cli, snapshot

NONE = ("--set", "calib.degradation=none")
TENSORS = ("--set", "calib.folder=null", "--set", "calib.tensors=calib.npy")


def test_build_from_tensors_uses_them(ws: Path) -> None:
    np.save(ws / "calib.npy", np.full((4, 3, 16, 16), 0.5, np.float32))  # one flat colour: the coverage check says so
    res = run_cli("build", "-r", "recipe.yaml", "--no-validate", "--out", "out", *TENSORS, cwd=ws)
    assert res.code == 0, res.err
    assert "same flat colour (RGB [128, 128, 128])" in res.out + res.err  # printed while building
    plan = json.loads((ws / "out" / "plan.json").read_text())
    assert plan["provenance"]["calibration_patches"] == 4


def test_build_from_lr_images(ws: Path) -> None:
    # The 40x48 images give no 24x24 patch once downscaled x2 (20x24): only used as they are do they fit.
    patch = ("--set", "calib.patch_size=24")
    res = run_cli("build", "-r", "recipe.yaml", "--no-validate", *patch, cwd=ws)
    assert_one_error(res, 2, "smaller than one 24x24 LR patch")
    res = run_cli("build", "-r", "recipe.yaml", "--no-validate", "--out", "out", *patch, *NONE, cwd=ws)
    assert res.code == 0, res.err
    assert "degradation: none" in (ws / "out" / "recipe.yaml").read_text()


def test_bad_tensors_one_line(ws: Path) -> None:
    np.save(ws / "calib.npy", np.full((4, 3, 16, 16), np.nan, np.float32))
    before = snapshot(ws)
    res = run_cli("build", "-r", "recipe.yaml", "--no-validate", *TENSORS, cwd=ws)
    assert_one_error(res, 2, "calib.npy has shape (4, 3, 16, 16)", "NaN")
    assert_kept(before, ws)


def test_float_tier_without_hr_one_line(ws: Path) -> None:
    before = snapshot(ws)
    res = run_cli(
        "build",
        "-r",
        "recipe.yaml",
        "--set",
        "calib.degradation=none",
        "--set",
        "quant.float_tier.max_drop_db=0.2",
        cwd=ws,
    )
    assert_one_error(res, 2, "quant.float_tier.max_drop_db > 0 needs HR images")
    assert_kept(before, ws)
