"""Progress: bars with ETA on a terminal only, quiet mode, skipped stages say why, long steps report steps."""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from srdeploy.progress import RichProgress, Stage


class Recorder:
    """A Progress that remembers what the library told it."""

    quiet = False

    def __init__(self) -> None:
        self.stages: dict[str, dict] = {}
        self.skipped: dict[str, str] = {}
        self.logs: list[str] = []

    @contextmanager
    def stage(self, title: str, total: int | None = None):
        rec = self.stages.setdefault(title, dict(total=total, done=[]))
        handle = Stage(rec["done"].append)
        yield handle
        if handle.skipped is not None:
            self.skipped[title] = handle.skipped

    def skip(self, title: str, why: str) -> None:
        self.skipped[title] = why

    def log(self, message: str) -> None:
        self.logs.append(message)


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=terminal, width=120), buf


def test_terminal_gets_a_bar_with_eta_and_a_summary_line() -> None:
    console, buf = _console(terminal=True)
    bar = RichProgress(console)
    assert not bar.quiet
    with bar.stage("calibrate", total=4) as advance:
        advance(2)
    text = buf.getvalue()
    assert "ETA" in text and "calibrate" in text and "✓" in text


def test_skipped_stage_says_why_instead_of_a_tick() -> None:
    console, buf = _console(terminal=True)
    with RichProgress(console).stage("TensorRT engines") as stage:
        stage.skip("tensorrt.enabled is false")
    lines = [line for line in buf.getvalue().splitlines() if "TensorRT engines" in line]
    assert lines[-1].endswith("TensorRT engines: skipped (tensorrt.enabled is false)")
    assert "✓" not in buf.getvalue().split("TensorRT engines: skipped")[1]
    assert not any("✓ TensorRT" in line for line in lines)


def test_quiet_when_not_a_terminal_or_asked() -> None:
    for console, buf, quiet in (
        (*_console(terminal=False), None),
        (*_console(terminal=True), True),
    ):
        bar = RichProgress(console, quiet=quiet)
        assert bar.quiet
        with bar.stage("validate 3 image(s)", total=3) as advance:
            advance(3)
        bar.skip("validate", "--no-validate")
        bar.log("a warning the user must see")
        assert buf.getvalue().strip() == "a warning the user must see"


def test_build_reports_skipped_engines_and_validation(ws: Path, tmp_path: Path, monkeypatch) -> None:
    from srdeploy.pipeline import build
    from srdeploy.recipe import load_recipe

    monkeypatch.chdir(ws)  # the recipe's paths are relative to where srdeploy runs
    rec = Recorder()
    build(load_recipe(ws / "recipe.yaml"), tmp_path / "b", progress=rec, run_validation=False)
    assert "tensorrt.enabled is false" in rec.skipped["TensorRT engines"]
    assert rec.skipped["validate"] == "--no-validate"
    emit = rec.stages["emit graphs"]
    assert emit["done"][-1] == emit["total"]


def test_validate_and_eval_report_every_image(ws: Path, good_build: Path, monkeypatch) -> None:
    from srdeploy.validate.cli_support import validate_folder
    from srdeploy.validate.fp32_eval import evaluate_fp32

    monkeypatch.chdir(ws)  # the build's recipe names its dataset relative to where srdeploy runs
    rec = Recorder()
    validate_folder(good_build, report_dir=ws / "rep", progress=rec)
    ((title, st),) = rec.stages.items()
    assert title == "validate 2 image(s)" and st["total"] == 4  # 2 images compared + 2 crop strips
    assert st["done"] == [1, 2, 3, 4]
    rec = Recorder()
    evaluate_fp32(str(ws / "tiny.pt"), str(ws / "hr"), progress=rec)
    assert rec.stages["evaluate 2 image(s)"] == dict(total=2, done=[1, 2])


def test_export_prints_no_torchvision_warnings(tmp_path: Path) -> None:
    code = (
        "import sys; sys.path.insert(0, 'tests'); from srtest import tiny_edsr; "
        "from srdeploy.export import export_onnx; "
        f"export_onnx(tiny_edsr(blocks=1), {str(tmp_path / 'm.onnx')!r})"
    )
    repo = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "m.onnx").is_file()
    assert "torchvision" not in res.stderr + res.stdout, res.stderr
