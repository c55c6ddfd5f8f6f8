"""Progress reporting seam: the library reports stages and steps; the CLI renders them with rich.

A stage yields a ``Stage`` handle: call it with the steps done so far (fractions allowed: an image
half tiled is 0.5), or ``skip(why)`` when the stage did nothing, so the summary line says "skipped (why)"
instead of a tick with 0.0 s. ``RichProgress`` shows a bar with percentage, elapsed time and ETA only on
a terminal, and nothing but ``log`` lines when ``quiet`` (the CLI's -q) or when its console is not a
terminal (CI logs, pipes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Stage:
    """What a running stage is told: steps done (``stage(n)``) and, when it did nothing, why (``skip``)."""

    def __init__(self, update: Callable[[float], None] | None = None) -> None:
        self._update = update
        self.skipped: str | None = None

    def __call__(self, done: float) -> None:
        if self._update is not None:
            self._update(done)

    def skip(self, why: str) -> None:
        self.skipped = why


class Progress(Protocol):
    def stage(self, title: str, total: int | None = None) -> AbstractContextManager[Stage]: ...

    def skip(self, title: str, why: str) -> None: ...

    def log(self, message: str) -> None: ...


class SilentProgress:
    quiet = True

    @contextmanager
    def stage(self, title: str, total: int | None = None) -> Iterator[Stage]:
        yield Stage()

    def skip(self, title: str, why: str) -> None:
        pass

    def log(self, message: str) -> None:
        pass


def skipped_line(title: str, why: str) -> str:
    return f"– {title}: skipped ({why})"


def done_line(title: str, seconds: float) -> str:
    return f"✓ {title} ({seconds:.1f} s)"


class RichProgress:
    """Stages as transient rich bars (percentage, elapsed, ETA) on a terminal; a summary line per stage.

    ``quiet``: True shows neither bars nor summary lines (log lines still print); None (default): quiet
    when the console is not a terminal. The other helper's ``-q`` sets it on the CLI's instance."""

    def __init__(self, console: object | None = None, quiet: bool | None = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.quiet = (not getattr(self.console, "is_terminal", False)) if quiet is None else quiet

    @contextmanager
    def stage(self, title: str, total: int | None = None) -> Iterator[Stage]:
        t0 = time.perf_counter()
        if self.quiet:
            handle = Stage()
            yield handle
        else:
            with self._bar(total is not None) as bar:
                task = bar.add_task(title, total=total)
                handle = Stage(lambda n: bar.update(task, completed=n))
                yield handle
        if handle.skipped is not None:
            self.skip(title, handle.skipped)
        elif not self.quiet:
            self.console.print(f"[green]✓[/] {_escape(title)} [dim]({time.perf_counter() - t0:.1f} s)[/]")

    def _bar(self, counted: bool):
        """Percentage, steps and ETA where the stage has a step count; elapsed time only where it has none."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RP

        counts = (TaskProgressColumn(), MofNCompleteColumn()) if counted else ()
        eta = (TextColumn("ETA"), TimeRemainingColumn()) if counted else ()
        columns = (TextColumn("{task.description}"), BarColumn(), *counts, TimeElapsedColumn(), *eta)
        return RP(*columns, console=self.console, transient=True)

    def skip(self, title: str, why: str) -> None:
        if not self.quiet:
            self.console.print(skipped_line(title, why), markup=False, highlight=False, soft_wrap=True)

    def log(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False, soft_wrap=True)  # paths may hold brackets


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
