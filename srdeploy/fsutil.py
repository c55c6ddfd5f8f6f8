"""Atomic file and folder writes: readers never see half-written outputs, and no output replaces
anything its ``check`` does not accept.

A folder output is staged as ``.NAME.partial-XXXX`` beside ``NAME`` and swapped in at the end,
under an exclusive lock (``.NAME.lock``, removed afterwards) so two runs writing the same place
cannot interleave. Because the lock is held for the whole run, any ``.NAME.partial-*`` found by the
next run to the same place belongs to a run that was killed (SIGKILL, power loss) and is removed;
a ``.NAME.old-PID`` (the previous output, moved aside during a swap) is put back when ``NAME`` is
missing and removed otherwise. Each such repair is reported through ``log``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from srdeploy.errors import OutputError
from srdeploy.interrupts import critical

Log = Callable[[str], None]
PARTIAL = ".partial-"
OLD = ".old-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _default_log(message: str) -> None:
    logging.getLogger("srdeploy").warning(message)


@contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp: str | None = None
    try:
        # created in a critical section inside the try: a signal deferred to its end still finds the cleanup
        with critical():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix or ".tmp")
            os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    finally:
        with critical():
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def output_path(path: str | os.PathLike[str]) -> Path:
    """The absolute form of an output folder path, refusing ones that cannot be replaced safely."""
    target = Path(os.path.abspath(path))
    if not target.name:
        raise OutputError(f"cannot write the output to {target}", "pass a folder path below /")
    cwd = Path.cwd()
    if cwd == target or target in cwd.parents:
        raise OutputError(
            f"output {target} is the current folder or contains it", "pass a new folder, e.g. --out builds/NAME"
        )
    return target


def ensure_parent(path: Path) -> None:
    """Create ``path``'s parent folders, or say exactly why they cannot hold it."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (parent, *parent.parents) if p.exists() and not p.is_dir()), parent)
        raise OutputError(
            f"cannot write {path}: {blocker} is a file, not a folder", "pass an output path whose parents are folders"
        ) from None
    except OSError as exc:
        raise OutputError(
            f"cannot create {parent}: {exc.strerror or exc}", "pass an output location you can write to"
        ) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: {parent} is not writable", "pass an output location you can write to")


def _lock_holder(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
    except OSError:
        return "?"


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for output ``path``; raise OutputError if another process holds it."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): run unlocked rather than not at all
        yield
        return
    lock = path.with_name(f".{path.name}.lock")
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(
                f"cannot write in {path.parent} ({exc.strerror})", "pass an output location you can write to"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise OutputError(
                f"another srdeploy process (pid {holder}) is writing {path}",
                "wait for it to finish, or pass another output folder",
            ) from None
        # The previous holder unlinks the file before releasing it: make sure ours is still the one on disk.
        try:
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    try:
        yield
    finally:
        with critical():
            with suppress(FileNotFoundError):
                os.unlink(lock)
            os.close(fd)


def _siblings(path: Path, marker: str) -> list[Path]:
    found = [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}{marker}")]
    return sorted(found, key=lambda p: p.lstat().st_mtime)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def clean_stale(path: Path, log: Log | None = None) -> None:
    """Remove what killed runs left beside ``path`` (call while holding :func:`locked`)."""
    log = log or _default_log
    for p in _siblings(path, PARTIAL):
        if p.is_dir() and not p.is_symlink():
            _remove_tree(p)
            log(f"removed {p}: the unfinished output of an interrupted run")
    olds = [p for p in _siblings(path, OLD) if p.is_dir() and not p.is_symlink()]
    if olds and not os.path.lexists(path):
        restored = olds.pop()
        os.replace(restored, path)
        log(f"restored {path} from {restored.name}: a run was interrupted while replacing it")
    for p in olds:
        _remove_tree(p)
        log(f"removed {p}: a previous output that an interrupted run had moved aside")


@contextmanager
def staging_folder(path: Path) -> Iterator[Path]:
    """A fresh ``.NAME.partial-XXXX`` beside ``path``; removed unless the block moved it away."""
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}{PARTIAL}"))
    try:
        yield tmp
    finally:
        with critical():
            if tmp.exists():
                _remove_tree(tmp)


def swap_in(tmp: Path, path: Path) -> None:
    """Replace ``path`` by the folder ``tmp`` (both in one parent folder); a signal waits for the end."""
    with critical():
        os.chmod(tmp, 0o777 & ~_umask())
        if not os.path.lexists(path):
            _rename(tmp, path)
            return
        old = path.with_name(f".{path.name}{OLD}{os.getpid()}")
        _rename(path, old)
        try:
            _rename(tmp, path)
        except OutputError:
            os.replace(old, path)
            raise
        _remove_tree(old)


def _rename(src: Path, dst: Path) -> None:
    try:
        os.replace(src, dst)
    except OSError as exc:
        raise OutputError(f"cannot move the output into {dst}: {exc.strerror or exc}", "nothing was changed") from None


@contextmanager
def atomic_folder(
    path: str | os.PathLike[str], check: Callable[[Path], None] | None = None, log: Log | None = None
) -> Iterator[Path]:
    """Build a folder under a temporary name; on success it replaces ``path`` as a whole.

    ``check(path)`` raises when ``path`` must not be replaced; it runs before the block and again
    before the swap. The default accepts only an absent or empty folder or an srdeploy build whose
    manifest lists every file in it (buildfolder.check_replaceable). On failure or interruption the
    temporary folder is removed and ``path`` is left untouched.
    """
    if check is None:
        from srdeploy.buildfolder import check_replaceable as check  # buildfolder imports this module
    target = output_path(path)
    ensure_parent(target)
    with locked(target):
        clean_stale(target, log)
        check(target)
        with staging_folder(target) as tmp:
            yield tmp
            check(target)
            swap_in(tmp, target)
