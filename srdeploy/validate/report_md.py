"""report.md: the report's blocks (report_doc) as GitHub Markdown."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srdeploy.validate.report_blocks import Block, Bullets, Figure, Heading, Para, Table, Verdict
from srdeploy.validate.report_doc import report_blocks


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(t: Table) -> list[str]:
    lines = [f"| {' | '.join(_cell(c) for c in t.columns)} |", "|" + "---|" * len(t.columns)]
    lines += [f"| {' | '.join(_cell(c) for c in row)} |" for row in t.rows]
    return lines + (["", t.caption] if t.caption else [])


def block_lines(block: Block) -> list[str]:
    if isinstance(block, Heading):
        return ["#" * block.level + " " + block.text]
    if isinstance(block, Para):
        return [block.text]
    if isinstance(block, Bullets):
        return [f"- {item}" for item in block.items]
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return [f"![{block.caption}]({block.path})"]
    if isinstance(block, Verdict):
        return [f"**Verdict: {'PASS' if block.passed else 'FAIL'}**", *(f"- {f}" for f in block.failures)]
    raise TypeError(f"unknown report block {block!r}")


def render_markdown(report: Mapping[str, Any]) -> str:
    lines: list[str] = []
    for block in report_blocks(report):
        lines += [*block_lines(block), ""]
    return "\n".join(lines).rstrip("\n") + "\n"
