"""House rules that keep the package readable: files under 300 lines, functions under 60."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "srdeploy"
MAX_FILE_LINES, MAX_FUNCTION_LINES = 300, 60


def python_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_files_are_short() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in python_files()
        if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert not long, f"files over {MAX_FILE_LINES} lines: {long}"


def test_functions_are_short() -> None:
    long = {}
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if n > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PACKAGE)}:{node.name}"] = n
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"
