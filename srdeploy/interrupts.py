"""SIGINT/SIGTERM as an exception, so ``finally`` blocks remove unfinished outputs.

Python's default SIGTERM action kills the process without unwinding, which is how killed CI jobs
used to leave ``.NAME.partial-*`` folders behind. The CLI installs :func:`handle_signals`; the
filesystem helpers wrap the few renames that must not be cut in half in :func:`critical`, which
defers a signal until the block is done.

Where the platform allows (POSIX), the signals are blocked in every thread started inside the block
and received by one watcher thread (``sigwait``) that hands them to the main thread. The kernel may
deliver a process-directed signal to any thread that does not block it, and CPython runs its C-level
handler on that thread's alternate signal stack; a worker thread of a native library (ONNX Runtime,
OpenMP, OpenVINO's TBB) with a stale alternate stack then turned a clean exit 143 into a SIGSEGV with
no output (seen once in CI during `validate`). With the signals blocked no handler ever runs there.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM)
_state = {"depth": 0, "pending": 0, "received": 0}


class Interrupted(BaseException):
    """The process received SIGINT or SIGTERM. A BaseException, so ``except Exception`` in
    library code does not swallow it; exit status 128 + the signal number, as a shell reports."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def received() -> int:
    """The last signal :func:`handle_signals` turned into :class:`Interrupted` (0: none). An
    extension module's import converts any exception into ImportError, so the CLI asks this
    rather than trusting the exception type."""
    return _state["received"]


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _state["received"] = signum
    if _state["depth"]:
        _state["pending"] = signum
        return
    raise Interrupted(signum)


def _watch(handled: tuple[int, ...], stop: threading.Event) -> None:
    """Receive the blocked signals and raise them in the main thread as if delivered there."""
    import _thread

    while True:
        signum = signal.sigwait(handled)
        if stop.is_set():
            return
        _thread.interrupt_main(signum)  # runs the Python-level handler (_on_signal) in the main thread


@contextmanager
def _watcher(handled: tuple[int, ...]) -> Iterator[None]:
    """Block ``handled`` in this thread (threads started later inherit the mask) and watch for them."""
    main = threading.current_thread() is threading.main_thread()
    if not handled or not main or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    stop = threading.Event()
    thread = threading.Thread(target=_watch, args=(handled, stop), name="srdeploy-signals", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        signal.pthread_kill(thread.ident, handled[0])  # wakes sigwait; the stop flag makes it a no-op
        thread.join()
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


@contextmanager
def handle_signals() -> Iterator[None]:
    """Turn SIGINT/SIGTERM into :class:`Interrupted` inside the block (main thread only).

    A signal that was ignored when the process started (``nohup``, background jobs) stays ignored.
    Processes started inside the block inherit the blocked mask (srdeploy starts none).
    """
    previous = {}
    _state["received"] = 0
    for sig in HANDLED:
        current = signal.getsignal(sig)
        if current is signal.SIG_IGN:
            continue
        previous[sig] = current
        signal.signal(sig, _on_signal)
    try:
        with _watcher(tuple(previous)):
            yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _state["received"] = 0  # a signal handled here must not make later imports outside look interrupted


@contextmanager
def critical() -> Iterator[None]:
    """Run the block to its end even if a signal arrives; raise :class:`Interrupted` after it."""
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if not _state["depth"] and _state["pending"]:
            signum, _state["pending"] = _state["pending"], 0
            raise Interrupted(signum)


def reraise_pending() -> None:
    """Call where an ImportError is turned into "not available": if a signal arrived during the import,
    the ImportError is the interrupt in disguise, and must not become a silently missing backend."""
    if _state["received"]:
        raise Interrupted(_state["received"])
