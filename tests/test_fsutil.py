"""fsutil: staged folder outputs, the per-output lock, repair of what killed runs left behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from srdeploy.errors import OutputError
from srdeploy.fsutil import atomic_file, atomic_folder, clean_stale, ensure_parent, locked, output_path, swap_in
from srdeploy.interrupts import Interrupted, critical, handle_signals, received


def _until_the_signal_arrives() -> None:
    """A signal is received by a watcher thread and handed to the main thread: wait for it (5 s at most)."""
    deadline = time.monotonic() + 5
    while not received() and time.monotonic() < deadline:
        time.sleep(0.001)
    assert received(), "the signal never reached the main thread"


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_folder_publishes_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_folder(out) as tmp:
        (tmp / "a.txt").write_text("1")
        assert not out.exists() and tmp.name.startswith(".out.partial-")
    assert (out / "a.txt").read_text() == "1"
    assert _entries(tmp_path) == ["out"]  # no lock file or partial left
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "other") as tmp:
        (tmp / "b.txt").write_text("2")
        raise RuntimeError("build failed")
    assert _entries(tmp_path) == ["out"]


def test_atomic_folder_refuses_a_foreign_folder_before_the_block(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    ran = []
    with pytest.raises(OutputError, match="not an srdeploy build folder"), atomic_folder(tmp_path / "mine"):
        ran.append(True)
    assert not ran and (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert _entries(tmp_path) == ["mine"]


def test_interruption_inside_the_block_removes_the_staging_folder(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(Interrupted), atomic_folder(tmp_path / "out") as tmp:
        (tmp / "half.bin").write_bytes(b"x")
        raise Interrupted(signal.SIGTERM)
    assert _entries(tmp_path) == ["out"] and list((tmp_path / "out").iterdir()) == []


def test_lock_is_exclusive_and_removed_after(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with locked(out):
        assert (tmp_path / ".out.lock").read_text().strip() == str(os.getpid())
        busy = rf"another srdeploy process \(pid {os.getpid()}\) is writing"
        with pytest.raises(OutputError, match=busy), locked(out):
            pass
    assert _entries(tmp_path) == []
    with locked(out):  # free again
        pass


def test_clean_stale_removes_partials_and_restores_a_cut_swap(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (tmp_path / ".out.partial-abc").mkdir()
    (tmp_path / ".out.old-11").mkdir()
    (tmp_path / ".out.old-11" / "kept.txt").write_text("previous build")
    (tmp_path / ".other.partial-x").mkdir()  # another output's: not touched
    logged: list[str] = []
    clean_stale(out, logged.append)
    assert (out / "kept.txt").read_text() == "previous build"
    assert _entries(tmp_path) == [".other.partial-x", "out"]
    assert any("removed" in m and ".out.partial-abc" in m for m in logged)
    assert any("restored" in m and ".out.old-11" in m for m in logged)
    (tmp_path / ".out.old-12").mkdir()
    clean_stale(out, logged.append)  # out exists now: the old copy is only removed
    assert _entries(tmp_path) == [".other.partial-x", "out"] and (out / "kept.txt").is_file()


def test_swap_defers_a_signal_until_it_is_done(tmp_path: Path) -> None:
    out, tmp = tmp_path / "out", tmp_path / ".out.partial-1"
    out.mkdir()
    (out / "v").write_text("old")
    tmp.mkdir()
    (tmp / "v").write_text("new")
    with handle_signals(), pytest.raises(Interrupted) as info, critical():
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the swap is "in progress"
        _until_the_signal_arrives()
        swap_in(tmp, out)
        assert (out / "v").read_text() == "new"  # still running: the signal waited
    assert info.value.exit_code == 143
    assert _entries(tmp_path) == ["out"] and (out / "v").read_text() == "new"


def test_output_path_refuses_the_working_folder_and_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for bad in (".", "..", "/"):
        with pytest.raises(OutputError):
            output_path(bad)
    assert output_path("builds/x") == tmp_path / "builds" / "x"


def test_ensure_parent_names_the_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"file is a file, not a folder"):
        ensure_parent(tmp_path / "file" / "sub" / "out")
    assert (tmp_path / "file").read_text() == "x"


def test_atomic_file_leaves_no_temporary_on_failure(tmp_path: Path) -> None:
    with pytest.raises(ValueError), atomic_file(tmp_path / "a.png") as tmp:
        tmp.write_bytes(b"half")
        raise ValueError("encoder failed")
    assert _entries(tmp_path) == []


def test_a_handled_signal_does_not_outlive_its_block() -> None:
    """Once handle_signals() has turned a SIGTERM into Interrupted and exited, later code outside it (a
    library build(), an optional backend's ImportError) must not be told it was interrupted."""
    from srdeploy.interrupts import reraise_pending

    with pytest.raises(Interrupted), handle_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        _until_the_signal_arrives()
    assert received() == 0
    reraise_pending()  # no Interrupted
