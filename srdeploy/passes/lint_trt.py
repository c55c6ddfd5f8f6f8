"""Static TensorRT checker for QDQ ONNX: runs everywhere, no TensorRT needed.

``lint_trt(model)`` applies the rules of lint_trt_qdq.py (errors: what TensorRT 10/11 would refuse)
and lint_trt_placement.py (warnings: slow or off-plan) and returns a LintReport. Every finding
names its rule and the node (or tensor) it is about. ``lint_trt_main(path)`` prints the report for
``srdeploy lint-trt model.onnx`` and returns the exit code (0 clean or warnings, 1 errors, 2 unreadable).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from srdeploy.errors import SrdeployError
from srdeploy.passes.lint_trt_graph import ERROR, WARNING, Finding, GraphIndex, Severity
from srdeploy.passes.lint_trt_placement import PLACEMENT_RULES
from srdeploy.passes.lint_trt_qdq import QDQ_RULES

__all__ = ["ERROR", "RULES", "WARNING", "Finding", "LintReport", "Severity", "lint_trt", "lint_trt_main"]

RULES = (*QDQ_RULES, *PLACEMENT_RULES)
_MAX_ROWS_PER_RULE = 12


@dataclass(frozen=True)
class LintReport:
    findings: tuple[Finding, ...]
    source: str = ""

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == WARNING)

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed): TensorRT should accept the graph."""
        return not self.errors

    def rules(self, severity: Severity | None = None) -> set[str]:
        return {f.rule for f in self.findings if severity is None or f.severity == severity}

    def summary(self) -> str:
        counts = Counter((f.severity, f.rule) for f in self.findings)
        parts = [f"{rule} x{n}" if n > 1 else rule for (_, rule), n in sorted(counts.items())]
        head = f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        where = f"{self.source}: " if self.source else ""
        verdict = "OK for TensorRT" if self.ok else "TensorRT would reject this graph"
        return f"{where}{verdict}: {head}" + (f" [{', '.join(parts)}]" if parts else "")

    def as_dict(self) -> dict[str, Any]:
        return dict(
            source=self.source,
            ok=self.ok,
            errors=len(self.errors),
            warnings=len(self.warnings),
            findings=[f.__dict__ for f in self.findings],
        )


def _load(model: onnx.ModelProto | str | os.PathLike[str]) -> tuple[onnx.ModelProto, str]:
    if isinstance(model, onnx.ModelProto):
        return model, model.graph.name or "<model>"
    path = Path(model)
    if not path.is_file():
        raise SrdeployError(f"ONNX file not found: {path}", "pass a trt graph, e.g. builds/<name>/trt/model.onnx")
    try:
        return onnx.load(str(path)), str(path)
    except Exception as exc:
        raise SrdeployError(f"{path} is not a readable ONNX model: {str(exc)[:200]}", "rebuild it") from exc


def lint_trt(model: onnx.ModelProto | str | os.PathLike[str]) -> LintReport:
    """Check a QDQ ONNX graph against TensorRT 10/11 explicit-quantization rules."""
    proto, source = _load(model)
    ix = GraphIndex.build(proto)
    findings: list[Finding] = []
    for rule in RULES:
        findings.extend(rule(ix))
    order = {ERROR: 0, WARNING: 1, "info": 2}
    findings.sort(key=lambda f: order[f.severity])  # stable: graph order within a severity
    return LintReport(findings=tuple(findings), source=source)


def lint_trt_main(path: str | os.PathLike[str]) -> int:
    """Print the lint of ``path`` with rich; exit code 0 (ok), 1 (errors), 2 (cannot read)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    try:
        report = lint_trt(path)
    except SrdeployError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return 2
    if report.findings:
        table = Table(title=f"TensorRT lint: {escape(report.source)}", show_lines=False)
        for col in ("severity", "rule", "node", "message"):
            table.add_column(col, overflow="fold")
        shown: Counter[str] = Counter()
        for f in report.findings:
            shown[f.rule] += 1
            if shown[f.rule] <= _MAX_ROWS_PER_RULE:
                color = "red" if f.severity == ERROR else "yellow" if f.severity == WARNING else "dim"
                table.add_row(f"[{color}]{f.severity}[/]", f.rule, escape(f.node), escape(f.message))
        for rule, n in sorted(shown.items()):
            if n > _MAX_ROWS_PER_RULE:
                table.add_row("", rule, f"... {n - _MAX_ROWS_PER_RULE} more", "")
        console.print(table)
    color = "green" if report.ok else "red"
    console.print(f"[bold {color}]{escape(report.summary())}[/]", highlight=False, soft_wrap=True)
    return 0 if report.ok else 1
