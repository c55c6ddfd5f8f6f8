"""Progress reporting seam: the library reports stages and steps; the CLI renders them with rich."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol


class Progress(Protocol):
    def stage(self, title: str, total: int | None = None) -> contextmanager: ...  # type: ignore[valid-type]

    def log(self, message: str) -> None: ...


class SilentProgress:
    @contextmanager
    def stage(self, title: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        yield lambda _n: None

    def log(self, message: str) -> None:
        pass


class RichProgress:
    """Stages as rich progress bars (transient), log lines printed above them."""

    def __init__(self, console: object | None = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)

    @contextmanager
    def stage(self, title: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        import time

        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RP

        t0 = time.perf_counter()
        with RP(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        ) as bar:
            task = bar.add_task(title, total=total)
            yield lambda n: bar.update(task, completed=n)
        self.console.print(f"[green]✓[/] {title} [dim]({time.perf_counter() - t0:.1f} s)[/]")

    def log(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False, soft_wrap=True)  # paths may hold brackets
