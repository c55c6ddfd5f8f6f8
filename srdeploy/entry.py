"""The CLI's process boundary: signals, one error line, exit codes.

Exit codes: 0 success; 1 a validation threshold failed; 2 bad input or environment (an
SrdeployError, a usage error, an OS error such as a full disk, out of memory); 3 internal error (a
bug: ``srdeploy --debug ...`` or SRDEPLOY_DEBUG=1 prints the traceback for a report); 128+N after
signal N (130 SIGINT, 143 SIGTERM), once unfinished outputs are removed.

Every error is one line on stderr, ``error: <problem> — <how to fix it>``, printed as plain text:
messages carry file names and install hints (``pip install 'srdeploy[zoo]'``) that rich markup
would eat or choke on, and control characters from file names are shown escaped.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from srdeploy.errors import SrdeployError
from srdeploy.interrupts import Interrupted, handle_signals, received

EXIT_INPUT = 2
EXIT_INTERNAL = 3
EXIT_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `srdeploy inspect B | head`
_state = {"debug": False}


def set_debug(on: bool) -> None:
    """``--debug`` (or SRDEPLOY_DEBUG=1): print the traceback before the error line."""
    _state["debug"] = on or os.environ.get("SRDEPLOY_DEBUG", "") not in ("", "0")


def one_line(text: str) -> str:
    """``text`` on one line, non-printable characters escaped (``\\x1b``), everything else kept."""
    joined = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in joined)


def print_error(message: str) -> None:
    from rich.console import Console
    from rich.text import Text

    line = Text.assemble(("error: ", "bold red"), one_line(message))
    Console(stderr=True, soft_wrap=True).print(line, highlight=False)


@contextmanager
def _warnings_on_one_line() -> Iterator[None]:
    """Library warnings as ``warning: <message>`` lines instead of multi-line source excerpts."""
    import warnings

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        sys.stderr.write(f"warning: {one_line(str(message))}\n")

    before = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = before


def _usage(exc: Any) -> int:
    """A click/typer usage error: one line plus where to read the usage."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # `srdeploy` alone: the help text is the answer
        exc.show()
        return int(exc.exit_code)
    ctx = getattr(exc, "ctx", None)
    where = f" — see '{ctx.command_path} --help'" if ctx is not None else ""
    print_error(f"{exc.format_message()}{where}")
    return int(exc.exit_code)


def _classify(exc: BaseException) -> tuple[str, int]:
    """(message, exit code) for anything that escaped a command, other than usage errors."""
    if isinstance(exc, Interrupted):
        return f"{exc} — stopped; unfinished outputs were removed", exc.exit_code
    if isinstance(exc, SrdeployError):
        return str(exc), exc.exit_code
    if isinstance(exc, MemoryError):
        return "out of memory — use smaller inputs (--tile, fewer calibration patches) or a larger machine", EXIT_INPUT
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        what = exc.strerror or str(exc) or type(exc).__name__
        return f"{what}{where} — check the path, its permissions and the free disk space", EXIT_INPUT
    return (
        f"internal error ({type(exc).__name__}: {exc}) — this is a bug in srdeploy; "
        "rerun with `srdeploy --debug ...` and report the traceback",
        EXIT_INTERNAL,
    )


def _report(exc: BaseException) -> int:
    import typer

    if isinstance(exc, SystemExit):
        raise exc
    if isinstance(exc, BrokenPipeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        return EXIT_PIPE
    if _state["debug"]:
        traceback.print_exception(exc)
    if received() and not isinstance(exc, Interrupted):
        exc = Interrupted(received())  # raised inside code that re-wrapped it (e.g. an import)
    if isinstance(exc, typer.TyperException) and hasattr(exc, "format_message"):
        return _usage(exc)
    if isinstance(exc, typer.Abort):
        print_error("aborted")
        return 1
    message, code = _classify(exc)
    print_error(message)
    return code


def run(app: Callable[..., Any], argv: Sequence[str] | None = None) -> int:
    """Run the typer ``app`` on ``argv`` (default sys.argv[1:]) and return the exit code."""
    set_debug(False)  # each run starts from the environment (tests call run() repeatedly)
    with handle_signals(), _warnings_on_one_line():
        try:
            try:
                rv = app(args=None if argv is None else list(argv), prog_name="srdeploy", standalone_mode=False)
                return rv if isinstance(rv, int) else 0
            except BaseException as exc:
                return _report(exc)
        except Interrupted as exc:  # a second signal while the first error was being reported
            return exc.exit_code
