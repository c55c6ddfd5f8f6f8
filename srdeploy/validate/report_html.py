"""report.html: the report's blocks (report_doc) as one self-contained HTML file (images as data: URIs)."""

from __future__ import annotations

import base64
import html
import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from srdeploy.validate.report_blocks import Block, Bullets, Figure, Heading, Para, Table, Verdict
from srdeploy.validate.report_doc import report_blocks

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}
th{background:#f2f2f2}tr.pass td:last-child{color:#11772b;font-weight:600}
tr.fail td{background:#fde8e8}tr.fail td:last-child{color:#b00020;font-weight:700}
.verdict{font-size:1.6em;font-weight:700;padding:.3em .6em;display:inline-block;border-radius:4px}
.verdict.pass{background:#dff3e4;color:#11772b}.verdict.fail{background:#fde8e8;color:#b00020}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{color:#555;font-size:.9em}
.caption{color:#555;font-size:.9em}.missing{color:#b00020}
"""


def data_uri(path: Path) -> str | None:
    """The file as a data: URI; None when it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _table(t: Table) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in t.columns)
    body = []
    for i, row in enumerate(t.rows):
        cls = f' class="{t.status[i]}"' if i in t.status else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
    caption = f'<p class="caption">{e(t.caption)}</p>' if t.caption else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{caption}"


def _figure(f: Figure, root: Path) -> str:
    e = html.escape
    uri = data_uri(root / f.path)
    if uri is None:
        return f'<p class="missing">image missing: {e(f.path)}</p>'
    return f'<figure><img src="{uri}" alt="{e(f.caption)}"><figcaption>{e(f.caption)}</figcaption></figure>'


def block_html(block: Block, root: Path) -> str:
    e = html.escape
    if isinstance(block, Heading):
        return f"<h{block.level}>{e(block.text)}</h{block.level}>"
    if isinstance(block, Para):
        return f"<p>{e(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{e(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return _figure(block, root)
    if isinstance(block, Verdict):
        word = "pass" if block.passed else "fail"
        items = "".join(f"<li>{e(f)}</li>" for f in block.failures)
        return f'<p><span class="verdict {word}">Verdict: {word.upper()}</span></p>' + (
            f"<ul>{items}</ul>" if items else ""
        )
    raise TypeError(f"unknown report block {block!r}")


def render_html(report: Mapping[str, Any], root: Path) -> str:
    """``root``: the folder the report's image paths are relative to (they are embedded, not linked)."""
    title = html.escape(f"srdeploy report: {report.get('recipe', {}).get('name', '')}")
    body = "\n".join(block_html(b, Path(root)) for b in report_blocks(report))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
