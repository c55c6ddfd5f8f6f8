"""OpenVINO must not leave its alternate signal stack registered: CPython delivers SIGINT/SIGTERM on the
registered stack (SA_ONSTACK), so a stale one turns srdeploy's clean exit 143 into a SIGSEGV (exit 139), as
it did in the test suite after an in-process benchmark. Runs in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("openvino")

SCRIPT = textwrap.dedent(
    """
    import faulthandler, gc, os, signal, sys, time
    import numpy as np, torch
    from srdeploy import sigstack
    from srdeploy.backends.openvino import OpenVinoRunner
    from srdeploy.interrupts import Interrupted, handle_signals

    faulthandler.enable()
    before = sigstack.current()
    path = sys.argv[1]
    torch.onnx.export(torch.nn.Conv2d(3, 3, 3, padding=1), torch.zeros(1, 3, 8, 8), path, dynamo=False,
                      input_names=["input"], dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}})
    a, b = OpenVinoRunner(path, threads=1), OpenVinoRunner(path, threads=1)
    for r in (a, b):
        r.activate()
        r.infer(np.zeros((1, 3, 8, 8), np.float32))
    a.deactivate(); b.deactivate(); del a, b; gc.collect()
    assert sigstack.current() == before, (sigstack.current(), before)
    try:
        with handle_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(500):  # the watcher thread hands the signal to this thread
                time.sleep(0.01)
    except Interrupted as exc:
        sys.exit(exc.exit_code)
    sys.exit(0)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack is checked on Linux")
def test_sigterm_after_openvino_is_a_clean_interrupt(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "conv.onnx")], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 143, proc.stderr[-2000:]
