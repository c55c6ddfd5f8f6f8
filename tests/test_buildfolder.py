"""buildfolder: what may be replaced, the publishing policy (DIR / DIR.failed), manifest checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srdeploy.buildfolder import BuildFolder, check_replaceable, publish_build, write_manifest
from srdeploy.errors import BuildFolderError, OutputError


def _fake_build(root: Path, content: str, **extra: object) -> Path:
    """A folder with a manifest written by the real writer (what every build ends with)."""
    (root / "sub").mkdir(parents=True)
    (root / "plan.json").write_text(content)
    (root / "sub" / "model.onnx").write_bytes(b"onnx")
    write_manifest(root, dict(extra))
    return root


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_replaceable_folders(tmp_path: Path) -> None:
    check_replaceable(tmp_path / "absent")
    (tmp_path / "empty" / "only-empty-dirs").mkdir(parents=True)
    check_replaceable(tmp_path / "empty")
    check_replaceable(_fake_build(tmp_path / "build", "{}"))


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("file", "is an existing file"),
        ("symlink", "is a symbolic link"),
        ("user folder", "not an srdeploy build folder"),
        ("web manifest", "not an srdeploy build folder"),
        ("extra file", "1 file\\(s\\) srdeploy did not write \\(notes.txt\\)"),
        ("extra link", "srdeploy did not write \\(sub/link\\)"),
        ("report", "is an srdeploy validation report folder, not a build folder"),
    ],
)
def test_not_replaceable(tmp_path: Path, case: str, match: str) -> None:
    path = tmp_path / "x"
    if case == "file":
        path.write_text("data")
    elif case == "symlink":
        (tmp_path / "real").mkdir()
        path.symlink_to(tmp_path / "real")
    elif case == "user folder":
        path.mkdir()
        (path / "photo.jpg").write_bytes(b"jpeg")
    elif case == "web manifest":
        path.mkdir()
        (path / "manifest.json").write_text('{"name": "app", "icons": []}')
    elif case == "extra file":
        _fake_build(path, "{}")
        (path / "notes.txt").write_text("mine")
    elif case == "extra link":
        _fake_build(path, "{}")
        (path / "sub" / "link").symlink_to(tmp_path)
    else:
        _fake_build(path, "{}", kind="validate-report")
    before = _tree(tmp_path) if not path.is_symlink() else None
    with pytest.raises(OutputError, match=match):
        check_replaceable(path)
    assert before is None or _tree(tmp_path) == before


def test_passing_build_replaces_and_clears_an_old_failure(tmp_path: Path) -> None:
    out = _fake_build(tmp_path / "tiny", "old")
    _fake_build(tmp_path / "tiny.failed", "failed before")
    with publish_build(out) as staging:
        _fake_build(staging.root / "x", "unused")  # content is the caller's business
        write_manifest(staging.root, {})
        staging.verdict = "pass"
    assert staging.published == out
    assert (out / "x" / "plan.json").read_text() == "unused"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]


def test_failing_build_goes_beside_and_keeps_the_good_one(tmp_path: Path) -> None:
    out = _fake_build(tmp_path / "tiny", "good")
    good = _tree(out)
    with publish_build(out) as staging:
        (staging.root / "report.json").write_text('{"verdict": "fail"}')
        write_manifest(staging.root, {})
        staging.verdict = "fail"
    assert staging.published is not None and staging.published.name == "tiny.failed"
    assert _tree(out) == good
    assert json.loads((tmp_path / "tiny.failed" / "report.json").read_text())["verdict"] == "fail"
    with publish_build(tmp_path / "first") as staging:  # no earlier build: DIR stays absent
        staging.verdict = "fail"
    assert not (tmp_path / "first").exists() and (tmp_path / "first.failed").is_dir()


def test_refusal_happens_before_the_build_runs(tmp_path: Path) -> None:
    (tmp_path / "tiny.failed").mkdir()
    (tmp_path / "tiny.failed" / "mine.txt").write_text("not a build")
    ran = []
    with pytest.raises(OutputError, match=r"tiny\.failed"), publish_build(tmp_path / "tiny"):
        ran.append(True)
    assert not ran and sorted(p.name for p in tmp_path.iterdir()) == ["tiny.failed"]


def test_exception_leaves_everything_as_it_was(tmp_path: Path) -> None:
    out = _fake_build(tmp_path / "tiny", "good")
    good = _tree(out)
    with pytest.raises(KeyError), publish_build(out) as staging:
        (staging.root / "half.onnx").write_bytes(b"...")
        raise KeyError("calibration crashed")
    assert _tree(out) == good and sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: {**d, "files": {"/etc/passwd": "0" * 64}}, "not a path inside the folder"),
        (lambda d: {**d, "files": {"plan.json": "not-a-digest"}}, "files.plan.json"),
        (lambda d: {**d, "srdeploy_version": 1}, "srdeploy_version"),
        (lambda d: {**d, "kind": "validate-report"}, "is a validation report folder, not a build folder"),
    ],
)
def test_manifest_values_are_checked(tmp_path: Path, change: object, match: str) -> None:
    root = _fake_build(tmp_path / "b", "{}")
    doc = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps(change(doc)))  # type: ignore[operator]
    with pytest.raises(BuildFolderError, match=match):
        BuildFolder(root).manifest()
