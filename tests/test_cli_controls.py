"""The controls scripting users expect: --x/--no-x flags, -q/-v/--log-file, --json on build, validate,
inspect, lint-trt and bench (stdout parses as one JSON document), and an inspect that fits 100 columns,
sorts naturally, imports no torch and says plainly when it is not given a build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clitest import assert_one_error, run_cli

REPO = Path(__file__).resolve().parents[1]


def _sub(*args: str, cwd: Path, columns: int = 100) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns), "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "srdeploy.cli", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False
    )


def test_flags_have_no_value_column_and_negative_forms(ws: Path) -> None:
    res = _sub("build", "--help", cwd=ws, columns=160)
    assert res.returncode == 0, res.stderr
    assert "--validate" in res.stdout and "--no-validate" in res.stdout
    assert "<bool>" not in res.stdout
    assert "<bool>" not in _sub("--help", cwd=ws, columns=160).stdout
    assert_one_error(run_cli("build", "-r", "recipe.yaml", "--no-validate", "true", cwd=ws), 2, "true")


def test_quiet_json_build_with_a_log_file_and_an_exclusion(ws: Path) -> None:
    exclude = "quant.exclude=[body.0.body.2]"
    res = run_cli(
        "-q", "--log-file", "run.log", "build", "-r", "recipe.yaml", "--no-validate", "--json", "--set", exclude, cwd=ws
    )
    assert res.code == 0, res.err
    doc = json.loads(res.out)  # the whole of stdout is one document
    build = ws / doc["build_folder"]
    assert (build / "plan.json").is_file()
    assert doc["verdict"] not in ("pass", "fail") and "summary" not in doc["report"]  # not validated
    assert "✓" not in res.err  # no progress lines with -q
    log = (ws / "run.log").read_text()
    assert "stage done: calibrate" in log and "stage done: emit graphs" in log
    layers = json.loads(run_cli("inspect", str(build), "--json", cwd=ws).out)["tiers"][0]["layers"]
    excluded = next(x for x in layers if x["layer"] == "body.0.body.2")
    assert not excluded["quantized"] and "quant.exclude ('body.0.body.2')" in excluded["reason"]
    assert excluded["weight_bits"] is None and all(v is None for v in excluded["inputs"].values())


def test_quiet_and_verbose_contradict(ws: Path) -> None:
    assert_one_error(run_cli("-q", "-v", "inspect", "nowhere", cwd=ws), 2, "--quiet", "--verbose")


def test_log_file_that_is_a_folder(ws: Path) -> None:
    assert_one_error(run_cli("--log-file", "calib", "inspect", "nowhere", cwd=ws), 2, "is a folder")


def test_validate_json(ws: Path, build_copy: Path) -> None:
    res = run_cli("validate", str(build_copy), "--json", cwd=ws)
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["verdict"] == "pass" and Path(doc["reports"]["json"]).is_file()
    assert doc["report"]["summary"] and doc["report"]["images_evaluated"] == 2
    res = run_cli("validate", str(build_copy), "--json", "--min-psnr", "99", "--report", "r2", cwd=ws)
    assert res.code == 1 and json.loads(res.out)["verdict"] == "fail"


def test_inspect_json_matches_the_plan(ws: Path, build_copy: Path) -> None:
    res = run_cli("inspect", str(build_copy), "--json", cwd=ws)
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    plan = json.loads((build_copy / "plan.json").read_text())
    layers = doc["tiers"][0]["layers"]
    assert {x["weight"] for x in layers if x["quantized"]} == set(plan["weights"])
    quantized = next(x for x in layers if x["quantized"])
    assert quantized["weight_bits"] == 8 and quantized["inputs"]["ort"]["bits"] == 8
    only = json.loads(run_cli("inspect", str(build_copy), "--json", "--quantized-only", cwd=ws).out)
    assert all(x["quantized"] for x in only["tiers"][0]["layers"]) and len(only["tiers"][0]["layers"]) < len(layers)


def test_lint_trt_json(ws: Path, build_copy: Path) -> None:
    good = run_cli("lint-trt", str(build_copy / "trt" / "model.onnx"), "--json", cwd=ws)
    assert good.code == 0 and json.loads(good.out)["ok"] is True
    bad = run_cli("lint-trt", str(build_copy / "ort" / "model.onnx"), "--json", cwd=ws)
    doc = json.loads(bad.out)
    assert bad.code == 1 and doc["ok"] is False and any(f["rule"] == "qdq-dtype" for f in doc["findings"])


def test_bench_json_is_alone_on_stdout(ws: Path, build_copy: Path) -> None:
    res = run_cli("bench", str(build_copy), "--json", "--size", "16", "--repeats", "1", "--threads", "1", cwd=ws)
    assert res.code == 0, res.err
    assert json.loads(res.out)["machine"]["cores"] >= 1


def test_inspect_fits_100_columns_with_whole_names(ws: Path, build_copy: Path) -> None:
    res = _sub("inspect", str(build_copy), cwd=ws, columns=100)
    assert res.returncode == 0, res.stderr
    assert max(len(line) for line in res.stdout.splitlines()) <= 100
    assert "…" not in "".join(line.split("│")[1] for line in res.stdout.splitlines() if line.count("│") > 2)
    for name in ("body.0.body.0", "body.0.body.2", "body.1"):
        assert f"│ {name} " in res.stdout, name


def test_natural_sort() -> None:
    from srdeploy.inspect import natural_key

    names = ["body.10.add@skip", "body.2.add@skip", "body.1.add@skip", "head.0", "body.2.body.10", "body.2.body.9"]
    assert sorted(names, key=natural_key) == [
        "body.1.add@skip",
        "body.2.add@skip",
        "body.2.body.9",
        "body.2.body.10",
        "body.10.add@skip",
        "head.0",
    ]


def test_inspect_imports_no_torch(build_copy: Path) -> None:
    code = (
        "import sys; from srdeploy.cli import app; from srdeploy.entry import run; "
        f"rc = run(app, ['inspect', {str(build_copy)!r}]); print('TORCH' if 'torch' in sys.modules else 'NO', rc)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    assert res.stdout.split()[-2:] == ["NO", "0"], res.stdout[-300:] + res.stderr


def test_inspect_a_checkpoint_says_it_needs_a_build(ws: Path) -> None:
    assert_one_error(run_cli("inspect", "tiny.pt", cwd=ws), 2, "tiny.pt is a checkpoint", "needs a build folder")


@pytest.mark.slow
def test_calibration_cache_export_then_import(ws: Path) -> None:
    args = ("build", "-r", "recipe.yaml", "--no-validate", "--calibration-cache", "c.json")
    first = run_cli(*args, "-o", "a", cwd=ws)
    assert first.code == 0 and (ws / "c.json").is_file(), first.err
    cache = (ws / "c.json").read_bytes()
    again = run_cli("-v", *args, "-o", "b", cwd=ws)
    assert again.code == 0 and again.err.count("range estimation skipped") == 1, again.err  # shown once, even with -v
    assert "stage done: weight grids" in again.err  # -v: debug lines
    assert (ws / "c.json").read_bytes() == cache  # imported, never overwritten
    plans = [json.loads((ws / d / "plan.json").read_text()) for d in ("a", "b")]
    assert plans[0]["ranges"] == plans[1]["ranges"] and plans[0]["tiers"] == plans[1]["tiers"]
    load = ("--load-calibration-cache", "c.json", "--set", "quant.act_bits=4")
    other = run_cli("build", "-r", "recipe.yaml", *load, cwd=ws)
    assert_one_error(other, 2, "c.json", "this recipe asks for")


def test_missing_calibration_cache_fails_before_the_build(ws: Path) -> None:
    res = run_cli("build", "-r", "recipe.yaml", "--load-calibration-cache", "none.json", cwd=ws)
    assert_one_error(res, 2, "calibration cache not found: none.json")
    assert not (ws / "builds").exists()


def test_inspect_of_four_profiles_keeps_every_table_whole(tiny_model, tiny_export, tmp_path: Path) -> None:
    from rich.console import Console
    from srtest import plan_for, recipe

    from srdeploy.inspect import inspect_table
    from srdeploy.quant.plan_io import save_plan

    profiles = ["trt", "ort", "openvino", "ort_avx2"]
    plan = plan_for(tiny_model, *tiny_export, recipe({"method": "minmax"}, export={"profiles": profiles}))
    save_plan(plan, tmp_path / "plan.json")
    console = Console(width=100, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    for table in inspect_table(tmp_path / "plan.json"):
        console.print(table)
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    borders = [line for line in lines if line[:1] in "┏┃┡│└"]
    assert borders and all(line[-1] in "┓┃┩│┘" for line in borders)  # no table cut at the right edge
    for x in plan.layers:
        assert any(line.startswith(f"│ {x.module} ") for line in lines), x.module
    assert all(f"┃ {p} " in text for p in profiles)
