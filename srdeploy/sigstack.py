"""Keep the calling thread's alternate signal stack across calls into OpenVINO.

OpenVINO's CPU plugin installs its own alternate signal stack (sigaltstack) on the thread that compiles or
runs a model and can leave it registered after freeing it. CPython installs its signal handlers with
SA_ONSTACK, so the next SIGINT/SIGTERM is then delivered onto unmapped memory and the process dies with
SIGSEGV (exit 139) instead of srdeploy's clean exit 130/143 (seen in the test suite after an in-process
`srdeploy bench`). Restoring the stack that was registered before the call removes the dangling stack.
Linux only; elsewhere a no-op.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager


class _StackT(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def current() -> tuple[int, int, int] | None:
    """(address, flags, size) of this thread's alternate signal stack; None where unknown."""
    if _LIBC is None:
        return None
    s = _StackT()
    if _LIBC.sigaltstack(None, ctypes.byref(s)) != 0:
        return None
    return int(s.ss_sp or 0), int(s.ss_flags), int(s.ss_size)


@contextmanager
def keep_signal_stack() -> Iterator[None]:
    """Run the block, then re-register the alternate signal stack that was registered before it."""
    before = current()
    try:
        yield
    finally:
        if before is not None and current() != before and _LIBC is not None:
            sp, flags, size = before
            _LIBC.sigaltstack(ctypes.byref(_StackT(sp or None, flags, size)), None)
