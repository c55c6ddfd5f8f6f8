"""docs/BENCHMARKS.md is generated from docs/results/*.json: a hand edit or a new result file without
regenerating fails here (fix: python tools/render_benchmarks.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("render_benchmarks", ROOT / "tools/render_benchmarks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmarks_md_is_rendered_from_the_results() -> None:
    assert (ROOT / "docs/BENCHMARKS.md").read_text(encoding="utf-8") == _tool().render()


def test_every_result_names_its_machine_and_command() -> None:
    for path in sorted((ROOT / "docs/results").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        machine = doc.get("machine") or doc.get("cpu")
        assert machine and (machine.get("cpu") or machine.get("model")), f"{path.name}: no CPU model"
        assert machine.get("isa"), f"{path.name}: no ISA flags"
        assert doc.get("command"), f"{path.name}: no command"


def test_a_table_renders_every_row_and_cell() -> None:
    t = _tool()
    lines = t.table(["a", "b"], [[1.23456, "x|y"], [None, 150.0]], "cap")
    assert lines[0] == "**cap**" and "| 1.235 | x\\|y |" in lines and "| – | 150.0 |" in lines
