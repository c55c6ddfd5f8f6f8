"""interrupts: SIGINT/SIGTERM reach the main thread as Interrupted and never run a handler on a worker thread."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from srdeploy.interrupts import HANDLED, handle_signals

POSIX = pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="signal masks are POSIX")


@POSIX
def test_threads_started_inside_the_block_block_the_handled_signals() -> None:
    seen: list[set[int]] = []

    def worker() -> None:
        seen.append(set(signal.pthread_sigmask(signal.SIG_BLOCK, [])))

    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    # a signal ignored at the start (nohup, a background job's SIGINT) stays ignored and is not handled
    handled = {s for s in HANDLED if signal.getsignal(s) is not signal.SIG_IGN}
    assert handled, "every handled signal is ignored here: the test would prove nothing"
    with handle_signals():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    assert handled <= seen[0]
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before  # the main thread's mask is restored
    assert not [t for t in threading.enumerate() if t.name == "srdeploy-signals"]  # the watcher is gone


# A worker thread whose alternate signal stack was freed (as a native library's pool thread can leave it):
# a SIGTERM delivered to that thread runs CPython's C handler on unmapped memory, a SIGSEGV with no output.
# Inside handle_signals() the thread blocks the signal, and the process still exits 143 on a SIGTERM.
STALE_STACK_WORKER = textwrap.dedent(
    """
    import ctypes, os, signal, sys, threading, time
    from srdeploy.interrupts import Interrupted, handle_signals

    libc = ctypes.CDLL(None)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]

    class Stack(ctypes.Structure):
        _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]

    ready, done = threading.Event(), threading.Event()

    def worker():
        size = 1 << 16
        sp = libc.mmap(None, size, 3, 0x22, -1, 0)  # PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS
        assert libc.sigaltstack(ctypes.byref(Stack(sp, 0, size)), None) == 0
        libc.munmap(ctypes.c_void_p(sp), ctypes.c_size_t(size))  # registered, but freed
        ready.set()
        done.wait()

    try:
        with handle_signals():
            t = threading.Thread(target=worker, daemon=True)
            t.start()
            ready.wait()
            signal.pthread_kill(t.ident, signal.SIGTERM)  # as if the kernel had picked this thread
            time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(500):
                time.sleep(0.01)
    except Interrupted as exc:
        sys.exit(exc.exit_code)
    sys.exit(0)
    """
)


@POSIX
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack via libc is checked on Linux")
def test_a_signal_never_runs_on_a_worker_threads_stale_signal_stack() -> None:
    proc = subprocess.run([sys.executable, "-c", STALE_STACK_WORKER], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 143, (proc.returncode, proc.stderr[-2000:])
