"""entry.run: which exception becomes which exit code and line (a small typer app of its own)."""

from __future__ import annotations

import errno
import signal
import warnings

import pytest
import typer

from srdeploy.entry import one_line, run
from srdeploy.errors import DataError, ValidationFailed
from srdeploy.interrupts import Interrupted

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
RAISES = {
    "input": DataError("image [a].png is truncated", "pip install 'srdeploy[zoo]'"),
    "threshold": ValidationFailed("drop 0.3 dB > 0.1 dB"),
    "disk": OSError(errno.ENOSPC, "No space left on device", "/out/x.onnx"),
    "memory": MemoryError(),
    "bug": ZeroDivisionError("division by zero"),
    "sigterm": Interrupted(signal.SIGTERM),
}


@app.command()
def fail(kind: str, count: int = typer.Option(1, min=1)) -> None:
    if kind == "warn":
        warnings.warn("first line\nsecond line", UserWarning, stacklevel=1)
        return
    if kind == "exit":
        raise typer.Exit(1)
    if kind != "none":
        raise RAISES[kind]


@app.command()
def other() -> None:
    """A second command, so `fail` must be named (as in srdeploy)."""


@pytest.mark.parametrize(
    ("kind", "code", "line"),
    [
        ("input", 2, "error: image [a].png is truncated — pip install 'srdeploy[zoo]'"),
        ("threshold", 1, "error: drop 0.3 dB > 0.1 dB"),
        ("disk", 2, "error: No space left on device: /out/x.onnx — check the path, its permissions and the free disk"),
        ("memory", 2, "error: out of memory"),
        ("bug", 3, "error: internal error (ZeroDivisionError: division by zero) — this is a bug in srdeploy"),
        ("sigterm", 143, "error: interrupted by SIGTERM — stopped; unfinished outputs were removed"),
    ],
)
def test_exceptions_become_one_line(capsys: pytest.CaptureFixture[str], kind: str, code: int, line: str) -> None:
    assert run(app, ["fail", kind]) == code
    captured = capsys.readouterr()
    assert captured.err.startswith(line) and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err


def test_success_and_explicit_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(app, ["fail", "none"]) == 0
    assert run(app, ["fail", "exit"]) == 1
    assert capsys.readouterr().err == ""


def test_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(app, ["fail", "none", "--count", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--count" in err and "see 'srdeploy fail --help'" in err


def test_debug_environment_prints_the_traceback(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setenv("SRDEPLOY_DEBUG", "1")
    assert run(app, ["fail", "bug"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("error: internal error")


def test_warnings_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert run(app, ["fail", "warn"]) == 0
    assert capsys.readouterr().err == "warning: first line second line\n"


def test_signal_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    run(app, ["fail", "none"])
    assert signal.getsignal(signal.SIGTERM) is before


def test_one_line_escapes_control_characters() -> None:
    assert one_line("a\x1b[31mb\n  c\td") == "a\\x1b[31mb c\\td"
    assert one_line("[bold]kept[/] 'srdeploy[zoo]'") == "[bold]kept[/] 'srdeploy[zoo]'"
