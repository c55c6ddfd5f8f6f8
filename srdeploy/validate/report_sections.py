"""The build's own sections of a report (artifacts, fusion, lint, TensorRT, passes, ...) as tables, not JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srdeploy.validate.report_blocks import Block, Bullets, Heading, Table, fmt

# report key -> heading; in this order; validate.md and report.md both carry every one present
SECTIONS = {
    "calibration_warnings": "Calibration set coverage",
    "artifacts": "Artifacts",
    "ort_fusion": "ONNX Runtime fusion (quantized convs run as integer kernels)",
    "lint": "TensorRT lint (static checks, no TensorRT needed)",
    "tensorrt": "TensorRT engines",
    "sparsity": "Sparsity",
    "equalization": "Equalization",
    "layer_bits": "Layer bits (quant.adaptive.layer_map: sensitivity; output PSNR vs float, each layer alone)",
    "refinement": "Refinement",
    "sensitivity": "Per-layer sensitivity (quant.float_budget)",
    "float_tier": "Float tier (quant.float_tier: the flattest tiles run unquantized)",
    "passes": "Graph passes",
}


def _scalar(v: Any) -> bool:
    return (
        v is None
        or isinstance(v, str | int | float | bool)
        or (isinstance(v, list | tuple) and all(_scalar(x) and not isinstance(x, list | tuple) for x in v))
    )


def flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts/lists -> (dotted key, scalar) pairs."""
    if _scalar(obj):
        return [(prefix, obj)]
    items = obj.items() if isinstance(obj, Mapping) else enumerate(obj)
    out: list[tuple[str, Any]] = []
    for k, v in items:
        out += flatten(v, f"{prefix}.{k}" if prefix else str(k))
    return out


def _size(n: Any) -> str:
    return f"{n / 1024:.1f} KB" if isinstance(n, int | float) else fmt(n)


def _artifacts(value: Mapping[str, Any]) -> Table:
    return Table(["file", "size"], [[k, _size(v)] for k, v in value.items()])


def _passes(value: Mapping[str, Any]) -> Table:
    rows = []
    for graph, records in value.items():
        for rec in records:
            changes = ", ".join(f"{k} {v}" for k, v in sorted(rec.get("changes", {}).items())) or "no change"
            rows.append([graph, rec.get("name", ""), changes, str(len(rec.get("skipped", [])))])
    return Table(["graph", "pass", "changes", "items left as they were"], rows)


def section_table(value: Any) -> Table | Bullets:
    """A dict of flat dicts -> one row per key; a flat dict -> key/value rows; anything else flattened."""
    if isinstance(value, Mapping) and value and all(isinstance(v, Mapping) and _scalar_dict(v) for v in value.values()):
        columns: list[str] = []
        for v in value.values():
            columns += [k for k in v if k not in columns]
        rows = [[str(k), *(fmt(v.get(c), 3) for c in columns)] for k, v in value.items()]
        return Table(["", *columns], rows)
    if isinstance(value, Mapping):
        return Table(["", "value"], [[k or "value", fmt(v, 4)] for k, v in flatten(value)])
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return Bullets(list(value))
    return Bullets([fmt(value, 4)])


def _scalar_dict(v: Mapping[str, Any]) -> bool:
    return all(_scalar(x) for x in v.values())


def section_blocks(report: Mapping[str, Any]) -> list[Block]:
    out: list[Block] = []
    for key, title in SECTIONS.items():
        value = report.get(key)
        if not value:
            continue
        if key == "artifacts":
            body: Block = _artifacts(value)
        elif key == "passes":
            body = _passes(value)
        else:
            body = section_table(value)
        out += [Heading(title), body]
    return out
