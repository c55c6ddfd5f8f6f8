"""Battery, output class: `build --out` and `upscale OUT` replace only what srdeploy wrote, refuse the
rest in one line (exit 2) before any work, and a failing rebuild keeps the good build."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from clitest import assert_kept, assert_one_error, leftovers, run_cli, snapshot
from PIL import Image


def _build(ws: Path, *args: str) -> object:
    return run_cli("build", "-r", "recipe.yaml", "--no-validate", *args, cwd=ws)


def _user_folder(ws: Path) -> Path:
    (ws / "mine").mkdir()
    (ws / "mine" / "notes.txt").write_text("my notes")
    (ws / "mine" / "photos").mkdir()
    (ws / "mine" / "photos" / "cat.png").write_bytes((ws / "calib" / "img0.png").read_bytes())
    return ws / "mine"


def _pwa_folder(ws: Path) -> Path:
    (ws / "site").mkdir()
    (ws / "site" / "manifest.json").write_text('{"name": "my web app", "files": {}}')
    (ws / "site" / "index.html").write_text("<html></html>")
    return ws / "site"


def _symlink(ws: Path) -> Path:
    (ws / "link").symlink_to(ws / "calib")
    return ws / "link"


def _foreign_failed(ws: Path) -> Path:
    _user_folder(ws).rename(ws / "mine.failed")
    return ws / "mine"


def _build_plus_user_file(ws: Path, good: Path) -> Path:
    shutil.copytree(good, ws / "old")
    (ws / "old" / "my-notes.md").write_text("results I wrote down")
    return ws / "old"


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("user folder", ["is not empty and is not an srdeploy build folder", "it is not replaced"]),
        ("web app with a manifest.json", ["is not an srdeploy build folder"]),
        ("build holding a user file", ["my-notes.md", "srdeploy did not write", "would delete them"]),
        ("regular file", ["is an existing file, not a folder"]),
        ("under a regular file", ["recipe.yaml is a file, not a folder"]),
        ("symlink", ["is a symbolic link"]),
        ("current folder", ["is the current folder or contains it"]),
        ("parent folder", ["is the current folder or contains it"]),
        ("foreign DIR.failed", ["mine.failed", "not an srdeploy build folder"]),
        ("validation report", ["is an srdeploy validation report folder, not a build folder"]),
    ],
)
def test_out_is_refused_and_left_untouched(ws: Path, good_build: Path, case: str, fragments: list[str]) -> None:
    out = {
        "user folder": lambda: _user_folder(ws),
        "web app with a manifest.json": lambda: _pwa_folder(ws),
        "build holding a user file": lambda: _build_plus_user_file(ws, good_build),
        "regular file": lambda: ws / "recipe.yaml",
        "under a regular file": lambda: ws / "recipe.yaml" / "out",
        "symlink": lambda: _symlink(ws),
        "current folder": lambda: Path("."),
        "parent folder": lambda: Path(".."),
        "foreign DIR.failed": lambda: _foreign_failed(ws),
        "validation report": lambda: Path(shutil.copytree(good_build, ws / "rep")),
    }[case]()
    if case == "validation report":
        from clitest import edit_json

        edit_json(out / "manifest.json", lambda d: {**d, "kind": "validate-report"})
    before = snapshot(ws)
    assert_one_error(_build(ws, "--out", str(out)), 2, *fragments)
    assert_kept(before, ws)
    assert snapshot(ws) == before  # nothing new: no hidden .NAME.old-PID, partial or lock
    assert not leftovers(ws)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_out_in_an_unwritable_folder(ws: Path) -> None:
    (ws / "ro").mkdir()
    (ws / "ro").chmod(0o555)
    try:
        assert_one_error(_build(ws, "--out", "ro/tiny"), 2, "ro is not writable")
    finally:
        (ws / "ro").chmod(0o755)
    assert list((ws / "ro").iterdir()) == []


def test_out_where_nothing_can_be_created(ws: Path) -> None:
    before = snapshot(ws)
    assert_one_error(_build(ws, "--out", "/proc/srdeploy-test/tiny"), 2, "cannot create /proc/srdeploy-test")
    assert_kept(before, ws)


def test_another_build_holds_the_lock(ws: Path) -> None:
    from srdeploy.fsutil import locked

    (ws / "builds").mkdir()
    with locked(ws / "builds" / "tiny"):
        res = _build(ws)
    assert_one_error(res, 2, f"another srdeploy process (pid {os.getpid()}) is writing", "builds/tiny")
    assert not (ws / "builds" / "tiny").exists() and not leftovers(ws / "builds")


def test_stale_partials_of_killed_runs_are_removed_and_reported(ws: Path, good_build: Path) -> None:
    builds = ws / "builds"
    shutil.copytree(good_build, builds / ".tiny.partial-killed1")
    shutil.copytree(good_build, builds / ".tiny.old-4242")  # a swap cut short: builds/tiny is missing
    res = _build(ws, "--set", "model.path=missing.pt")  # fails fast, after the clean-up
    assert_one_error(res, 2, "checkpoint not found")
    assert "removed" in res.err and ".tiny.partial-killed1" in res.err
    assert "restored" in res.err and ".tiny.old-4242" in res.err
    assert sorted(p.name for p in builds.iterdir()) == ["tiny"]
    assert snapshot(builds / "tiny") == snapshot(good_build)


def test_rebuild_replaces_its_own_build_and_an_empty_folder(ws: Path, good_build: Path) -> None:
    shutil.copytree(good_build, ws / "builds" / "tiny")  # validated: has a report.json the rebuild will not
    (ws / "empty").mkdir()
    for out in ("builds/tiny", "empty"):
        res = _build(ws, "--out", out)
        assert res.code == 0, res.err
        assert (ws / out / "manifest.json").is_file() and not (ws / out / "report.json").exists()
    assert not leftovers(ws / "builds") and not leftovers(ws)


def test_failing_rebuild_keeps_the_good_build(ws: Path, good_build: Path) -> None:
    good = shutil.copytree(good_build, ws / "builds" / "tiny")
    before = snapshot(good)
    res = run_cli("build", "-r", "recipe.yaml", "--set", "validate.thresholds.min_psnr_db=99", cwd=ws)
    assert res.code == 1, res.err
    assert "builds/tiny.failed" in res.out and "did not replace builds/tiny" in res.out
    assert snapshot(good) == before
    failed = ws / "builds" / "tiny.failed"
    assert (failed / "report.json").is_file() and '"verdict": "fail"' in (failed / "report.json").read_text()
    # the next good build takes DIR and removes the outdated DIR.failed
    assert _build(ws).code == 0
    assert sorted(p.name for p in (ws / "builds").iterdir()) == ["tiny"]


@pytest.mark.parametrize(
    ("out", "fragments"),
    [
        ("big.xyz", ["big.xyz has no image extension", "end the path with /"]),
        ("recipe.yaml/big.png", ["recipe.yaml is a file, not a folder", "nothing"]),
        ("calib/img0.png", ["would overwrite the input"]),
    ],
)
def test_upscale_output_refused_before_inference(ws: Path, good_build: Path, out: str, fragments: list[str]) -> None:
    before = snapshot(ws)
    res = run_cli("upscale", "calib/img0.png", out, "--build", str(good_build), cwd=ws)
    assert_one_error(res, 2, *fragments)
    assert_kept(before, ws)
    assert snapshot(ws) == before


def test_upscale_folder_refusals(ws: Path, good_build: Path) -> None:
    (ws / "out" / "img0.png").mkdir(parents=True)  # an output name taken by a folder
    before = snapshot(ws)
    res = run_cli("upscale", "calib", "out", "--build", str(good_build), cwd=ws)
    assert_one_error(res, 2, "out/img0.png exists and is not a file")
    res = run_cli("upscale", "calib", "all.png", "--build", str(good_build), cwd=ws)
    assert_one_error(res, 2, "all.png names an image file but calib is a folder")
    assert snapshot(ws) == before


def test_upscale_says_where_each_output_went(ws: Path, good_build: Path) -> None:
    res = run_cli("upscale", "calib/img0.png", "new/", "--build", str(good_build), cwd=ws)
    assert res.code == 0, res.err
    assert "wrote new/img0.png" in res.out
    assert Image.open(ws / "new" / "img0.png").size == (96, 80)
    res = run_cli("upscale", "calib", "many", "--build", str(good_build), cwd=ws)
    assert res.code == 0 and "wrote many/img0.png" in res.out and "wrote many/img1.png" in res.out
    assert not leftovers(ws / "many")
