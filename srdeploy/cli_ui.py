"""What the CLI shows and where: -q/-v/--log-file (the ``srdeploy`` logger), progress objects, --json.

Rules: stdout carries the result (a table, or with ``--json`` exactly one JSON document and nothing
else); progress, log lines and warnings go to stderr; ``-q`` drops progress and informational lines,
``-v`` adds debug lines; ``--log-file`` records every srdeploy log line (debug included, with times)
whatever -q/-v say.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from srdeploy.errors import SrdeployError

LOGGER = "srdeploy"
_state: dict[str, Any] = {"quiet": False, "verbose": False}
_HANDLER_TAG = "_srdeploy_cli_handler"
_SHOWN = "srdeploy_shown"  # a record the progress object already shows on stderr


def hide_flag_metavars() -> None:
    """Show flags as ``--x/--no-x`` without typer's ``<bool>`` value column (a flag takes no value)."""
    try:
        from typer.core import TyperOption
    except ImportError:  # another typer layout: its default rendering stays
        return
    original = getattr(TyperOption, "display_type_rich", None)
    if original is None or getattr(original, "_srdeploy", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) and self.metavar is None:
            return None
        return original(self, ctx)

    display_type_rich._srdeploy = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich


def configure(quiet: bool = False, verbose: bool = False, log_file: Path | None = None) -> None:
    """Set the verbosity of this run and attach the stderr (and file) handlers of the srdeploy logger."""
    if quiet and verbose:
        raise SrdeployError("-q/--quiet and -v/--verbose contradict each other", "pass one of them")
    _state.update(quiet=quiet, verbose=verbose)
    logger = logging.getLogger(LOGGER)
    for h in [h for h in logger.handlers if getattr(h, _HANDLER_TAG, False)]:
        logger.removeHandler(h)
        h.close()
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO)
    console.setFormatter(logging.Formatter("%(message)s"))
    console.addFilter(lambda record: not getattr(record, _SHOWN, False))  # the progress object printed it
    handlers: list[logging.Handler] = [console]
    if log_file is not None:
        handlers.append(_file_handler(Path(log_file)))
    for h in handlers:
        setattr(h, _HANDLER_TAG, True)
        logger.addHandler(h)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False


def _file_handler(path: Path) -> logging.Handler:
    if path.is_dir():
        raise SrdeployError(f"--log-file {path} is a folder", "pass a file name, e.g. --log-file build.log")
    try:
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    except OSError as exc:
        raise SrdeployError(
            f"cannot open --log-file {path}: {exc.strerror or exc}", "pass a writable file path"
        ) from None
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


def quiet() -> bool:
    return bool(_state["quiet"])


def log() -> logging.Logger:
    return logging.getLogger(LOGGER)


class LoggedProgress:
    """A progress object that also writes each stage (start, end, seconds) and log line to the logger;
    anything else the wrapped object offers is passed through unchanged."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    @contextlib.contextmanager
    def stage(self, title: str, total: int | None = None, **options: Any) -> Iterator[Callable[[int], None]]:
        t0 = time.perf_counter()
        log().debug("stage start: %s", title)
        with self._inner.stage(title, total, **options) as step:
            yield step
        log().debug("stage done: %s (%.1f s)", title, time.perf_counter() - t0)

    def log(self, message: str) -> None:
        log().info(message, extra={_SHOWN: True})  # to the log file; the inner object shows it
        self._inner.log(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def progress(console: Any) -> LoggedProgress:
    """Rich progress on ``console`` (stderr); with -q a quiet one (RichProgress(quiet=True) where it takes that)."""
    from srdeploy.progress import RichProgress, SilentProgress

    if not quiet():
        return LoggedProgress(RichProgress(console))
    if "quiet" in inspect.signature(RichProgress).parameters:
        return LoggedProgress(RichProgress(console, quiet=True))
    return LoggedProgress(SilentProgress())


@contextlib.contextmanager
def json_stdout(enabled: bool) -> Iterator[Callable[[Any], None]]:
    """With ``enabled``: anything the command prints to stdout goes to stderr, and the yielded function
    writes the one JSON document to the real stdout. Without: the function prints the JSON anyway."""
    real = sys.stdout

    def emit(document: Any) -> None:
        real.write(json.dumps(document, indent=1, sort_keys=False, default=_jsonable) + "\n")
        real.flush()

    if not enabled:
        yield emit
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield emit


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def print_summary(out: Any, report: dict) -> None:
    """The verdict table of a validation report on the console ``out``."""
    from rich.markup import escape
    from rich.table import Table

    if not report.get("summary"):
        return
    t = Table(title=escape(f"{report.get('recipe', {}).get('name', '')}: {report.get('dataset')}"))
    tiered = any(len(s["tier_usage"]) > 1 for s in report["summary"])  # a tier column only where tiers differ
    cols = ("execution", "Y-PSNR", "SSIM", "drop vs fp32", "sim agreement (min dB)") + (("tiers",) if tiered else ())
    for col in cols:
        t.add_column(col)
    b = report.get("bicubic", {})
    t.add_row("bicubic", f"{b.get('psnr_y', 0):.2f}", f"{b.get('ssim_y', 0):.4f}", "", "", *([""] if tiered else []))
    for s in report["summary"]:
        row = [
            escape(s["execution"]),
            f"{s['psnr_y']:.2f}",
            f"{s['ssim_y']:.4f}",
            "" if s["psnr_drop_db"] is None else f"{s['psnr_drop_db']:.3f}",
            "" if s["agreement_min_db"] is None else f"{s['agreement_min_db']:.1f}",
        ]
        t.add_row(*row, *([", ".join(f"{k}:{v}" for k, v in s["tier_usage"].items())] if tiered else []))
    out.print(t)
    verdict = str(report.get("verdict", ""))
    color = "green" if verdict == "pass" else "red"
    out.print(f"verdict: [bold {color}]{escape(verdict.upper())}[/]")
    for f in report.get("failures", []):
        out.print(f"  [red]✗[/] {escape(f)}")
    for w in report.get("warnings", []):
        out.print(f"  [bold yellow]![/] {escape(w)}")
