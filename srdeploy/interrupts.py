"""SIGINT/SIGTERM as an exception, so ``finally`` blocks remove unfinished outputs.

Python's default SIGTERM action kills the process without unwinding, which is how killed CI jobs
used to leave ``.NAME.partial-*`` folders behind. The CLI installs :func:`handle_signals`; the
filesystem helpers wrap the few renames that must not be cut in half in :func:`critical`, which
defers a signal until the block is done (a signal can arrive on any thread, so masking it in the
main thread would not be enough).
"""

from __future__ import annotations

import signal
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


@contextmanager
def handle_signals() -> Iterator[None]:
    """Turn SIGINT/SIGTERM into :class:`Interrupted` inside the block (main thread only).

    A signal that was ignored when the process started (``nohup``, background jobs) stays ignored.
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
