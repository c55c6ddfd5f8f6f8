"""Battery, signal class: a real srdeploy process interrupted mid-run cleans up, prints one line and
exits 128 + the signal; what SIGKILL leaves is removed (and reported) by the next build."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from clitest import Result, assert_one_error, run_cli, snapshot, start_cli
from PIL import Image

# Refinement with this many steps runs for minutes: the build is surely still running when signalled.
SLOW_BUILD = ("--set", "quant.refine.steps=100000", "--set", "quant.refine.patch_size=16")


def _wait_for(ready: Callable[[], bool], proc: subprocess.Popen, timeout: float = 240) -> None:
    t0 = time.monotonic()
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"srdeploy exited ({proc.returncode}) before it was signalled: {proc.stderr.read()}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail("srdeploy did not reach the point to signal in time")
        time.sleep(0.05)


def _signal(proc: subprocess.Popen, sig: int) -> Result:
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("srdeploy did not stop after the signal")
    return Result(proc.returncode, out, err)


def _partials(folder: Path, name: str = "tiny") -> list[Path]:
    return sorted(folder.glob(f".{name}.partial-*"))


def _images(folder: Path, n: int, size: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(n):
        Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8)).save(folder / f"im{i:03d}.png")
    return folder


def test_sigterm_mid_build_keeps_the_previous_build(ws: Path, good_build: Path) -> None:
    builds = ws / "builds"
    good = shutil.copytree(good_build, builds / "tiny")
    before = snapshot(good)
    proc = start_cli("build", "-r", "recipe.yaml", "--no-validate", *SLOW_BUILD, cwd=ws)
    _wait_for(lambda: any((p / "fp32.onnx").is_file() for p in _partials(builds)), proc)  # files written
    res = _signal(proc, signal.SIGTERM)
    assert_one_error(res, 143, "interrupted by SIGTERM", "unfinished outputs were removed")
    assert sorted(p.name for p in builds.iterdir()) == ["tiny"]  # no partial, no .old, no lock
    assert snapshot(good) == before


def test_sigint_mid_build(ws: Path) -> None:
    builds = ws / "builds"
    proc = start_cli("build", "-r", "recipe.yaml", "--no-validate", *SLOW_BUILD, cwd=ws)
    _wait_for(lambda: bool(_partials(builds)), proc)
    res = _signal(proc, signal.SIGINT)
    assert_one_error(res, 130, "interrupted by SIGINT", "unfinished outputs were removed")
    assert list(builds.iterdir()) == []


def test_sigkill_leftovers_are_removed_by_the_next_build(ws: Path) -> None:
    builds = ws / "builds"
    proc = start_cli("build", "-r", "recipe.yaml", "--no-validate", *SLOW_BUILD, cwd=ws)
    _wait_for(lambda: bool(_partials(builds)), proc)
    proc.kill()
    proc.communicate(timeout=60)
    stale = _partials(builds)
    assert stale, "SIGKILL cannot be handled: the staging folder stays behind"
    res = run_cli("build", "-r", "recipe.yaml", "--set", "model.path=missing.pt", cwd=ws)  # fails fast
    assert_one_error(res, 2, "checkpoint not found")
    assert f"removed {stale[0]}" in res.err and "interrupted run" in res.err
    assert list(builds.iterdir()) == []  # the partial and the stale lock file are gone


def test_sigterm_mid_upscale_leaves_only_complete_images(ws: Path, good_build: Path) -> None:
    inputs = _images(ws / "many", 120, 48)
    out = ws / "out"
    proc = start_cli("upscale", str(inputs), str(out), "--build", str(good_build), "--tile", "8", cwd=ws)
    # a finished image, not the hidden temporary it is written through (that one may still be removed)
    _wait_for(lambda: out.is_dir() and any(p.suffix == ".png" and p.name[0] != "." for p in out.iterdir()), proc)
    res = _signal(proc, signal.SIGTERM)
    assert_one_error(res, 143, "interrupted by SIGTERM")
    written = sorted(out.iterdir())
    assert written and all(p.suffix == ".png" and not p.name.startswith(".") for p in written)
    assert len(written) < 120
    for p in written:
        with Image.open(p) as img:
            img.load()
            assert img.size == (96, 96)
    assert len(list(inputs.iterdir())) == 120


def test_sigterm_mid_validate_writes_no_report(ws: Path, good_build: Path) -> None:
    build = shutil.copytree(good_build, ws / "b" / "tiny")
    before = snapshot(build)
    dataset = _images(ws / "hrmany", 40, 64)
    proc = start_cli("validate", str(build), "--dataset", str(dataset), "--tile", "8", cwd=ws)
    _wait_for(lambda: bool(_partials(ws / "b", "tiny.validate")), proc)
    res = _signal(proc, signal.SIGTERM)
    assert_one_error(res, 143, "interrupted by SIGTERM")
    assert sorted(p.name for p in (ws / "b").iterdir()) == ["tiny"]
    assert snapshot(build) == before
