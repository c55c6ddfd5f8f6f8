"""Renderer-neutral pieces of a report: headings, paragraphs, tables, figures (report_md / report_html)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: Sequence[str]


@dataclass(frozen=True)
class Table:
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]  # formatted cells
    caption: str = ""
    # row index -> "pass" | "fail" (the HTML renderer colours them)
    status: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Figure:
    path: str  # relative to the report's folder
    caption: str


@dataclass(frozen=True)
class Verdict:
    passed: bool
    failures: Sequence[str]


Block = Heading | Para | Bullets | Table | Figure | Verdict


def fmt(v: Any, nd: int = 2) -> str:
    """One cell: None as an en dash, floats to ``nd`` decimals, the rest as text."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{nd}f}" if math.isfinite(v) else str(v)
    if isinstance(v, list | tuple):
        return ", ".join(fmt(x, nd) for x in v) if v else "none"
    return str(v)


def signed(v: float | None, nd: int = 3) -> str:
    return "–" if v is None else f"{v:+.{nd}f}"


def table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], nd: Sequence[int] | int = 2, caption: str = ""
) -> Table:
    """A table of raw values, formatted per column (``nd``: decimals, one per column or for all)."""
    digits = list(nd) if isinstance(nd, Sequence) else [nd] * len(columns)
    cells = [[fmt(v, digits[i] if i < len(digits) else 2) for i, v in enumerate(r)] for r in rows]
    return Table(list(columns), cells, caption)
