"""The error printer, through the real console script: one plain line, nothing eaten by markup,
control characters escaped, usage errors on one line, tracebacks only with --debug."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from clitest import assert_one_error, cli_command, run_sub, snapshot


def test_markup_in_messages_is_printed_as_is(ws: Path) -> None:
    (ws / "[red]notes.yaml").write_text("- a list\n")
    line = assert_one_error(run_sub("build", "-r", "[red]notes.yaml", cwd=ws), 2)
    assert line == "error: [red]notes.yaml must be a YAML mapping at the top level — see recipes/README.md"
    line = assert_one_error(run_sub("build", "-r", "odd[/]name.yaml", cwd=ws), 2)
    assert "recipe odd[/]name.yaml not found" in line


def test_install_hint_keeps_its_extra(ws: Path, tmp_path: Path) -> None:
    # spandrel is installed by the README's command: hide it as a machine without it would be
    hidden = tmp_path / "no_spandrel" / "spandrel"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'spandrel'\")\n")
    before = snapshot(ws)
    env = {"PYTHONPATH": os.pathsep.join([str(hidden.parent), os.environ.get("PYTHONPATH", "")])}
    res = run_sub("build", "-r", "recipe.yaml", "--no-validate", "--set", "model.arch=spandrel", cwd=ws, env=env)
    line = assert_one_error(res, 2, "spandrel")
    assert "pip install 'srdeploy[zoo]'" in line
    assert snapshot(ws).items() >= before.items()
    assert sorted(p.name for p in (ws / "builds").iterdir()) == []


def test_control_characters_in_names_are_escaped(ws: Path) -> None:
    res = run_sub("build", "-r", "bad\x1b[2Jname\nx.yaml", cwd=ws)
    line = assert_one_error(res, 2, "not found")
    assert "bad\\x1b[2Jname x.yaml" in line  # escaped, and the newline cannot split the line
    assert "\x1b" not in res.err


def test_usage_errors_are_one_line(ws: Path) -> None:
    line = assert_one_error(run_sub("validate", cwd=ws), 2, "Missing argument")
    assert "srdeploy validate --help" in line
    assert_one_error(run_sub("upscale", "a.png", "b.png", "-b", "x", "--tile", "4", cwd=ws), 2, "--tile")
    assert_one_error(run_sub("no-such-command", cwd=ws), 2, "No such command")


def test_debug_shows_the_traceback(ws: Path) -> None:
    plain = run_sub("inspect", "nowhere", cwd=ws)
    assert_one_error(plain, 2, "not found: nowhere")
    debug = run_sub("--debug", "inspect", "nowhere", cwd=ws)
    assert debug.code == 2 and "Traceback" in debug.err and "PlanError" in debug.err
    assert debug.errors == plain.errors  # the same line closes the traceback


def test_environment_variable_turns_on_debug(ws: Path) -> None:
    import subprocess

    res = subprocess.run(
        [*cli_command(), "inspect", "nowhere"],
        cwd=ws,
        capture_output=True,
        text=True,
        env={**os.environ, "SRDEPLOY_DEBUG": "1"},
        check=False,
    )
    assert res.returncode == 2 and "Traceback" in res.stderr


def test_a_file_spandrel_does_not_know_is_named_with_a_reason(ws: Path) -> None:
    from srdeploy.models.spandrel_import import import_spandrel

    try:
        import_spandrel()
    except Exception as exc:  # not installed here
        pytest.skip(f"spandrel not importable: {exc}")
    res = run_sub("build", "-r", "recipe.yaml", "--no-validate", "--set", "model.arch=spandrel", cwd=ws)
    line = assert_one_error(res, 2, "spandrel does not recognise")
    reason = line.split("does not recognise", 1)[1].split(":", 1)[1].split(" — ")[0]
    assert reason.strip(), line
