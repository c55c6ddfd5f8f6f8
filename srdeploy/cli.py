"""srdeploy command line. Thin: parse, load the recipe, call the library, print with rich.

Errors, signals and exit codes are handled in one place, srdeploy/entry.py. Anything printed with
markup escapes the values it interpolates (paths and names can hold brackets).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from srdeploy import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Post-training deployment compiler for super-resolution networks.",
)
out = Console()
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        out.print(f"srdeploy {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="show the traceback of an error (for bug reports)")] = False,
) -> None:
    """srdeploy: calibrated low-bit QDQ ONNX for TensorRT and ONNX Runtime, validated."""
    from srdeploy.entry import set_debug

    set_debug(debug)


@app.command()
def build(
    recipe: Annotated[Path, typer.Option("--recipe", "-r", help="recipe YAML")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="output folder (default builds/<name>)")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="override a recipe key: a.b=value")] = None,
    no_validate: Annotated[bool, typer.Option("--no-validate", help="skip validation")] = False,
) -> None:
    """Calibrate, rewrite and validate: one build folder per recipe.

    DIR is replaced only if it is empty or an srdeploy build; a build that fails validation is
    written to DIR.failed/ and DIR keeps the previous build.
    """
    from srdeploy.recipe import load_recipe

    r = load_recipe(recipe, overrides or [])  # before importing torch: recipe errors come back fast
    from srdeploy.pipeline import build as run_build
    from srdeploy.progress import RichProgress

    result = run_build(r, out_dir, progress=RichProgress(err), run_validation=not no_validate)
    _print_summary(result.report)
    out.print(f"build folder: [bold]{escape(str(result.out_dir))}[/]", soft_wrap=True)
    if result.report.get("verdict") == "fail":
        kept = result.out_dir.with_name(result.out_dir.name.removesuffix(".failed"))
        out.print(escape(f"the failing build did not replace {kept}; inspect it in {result.out_dir}"), soft_wrap=True)
        raise typer.Exit(1)


@app.command()
def validate(
    build_dir: Annotated[Path, typer.Argument(help="build folder written by srdeploy build")],
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="named set or folder of HR images")] = None,
    max_drop: Annotated[float | None, typer.Option("--max-psnr-drop", help="max mean Y-PSNR drop (dB)")] = None,
    max_image_drop: Annotated[float | None, typer.Option("--max-image-psnr-drop", help="per image (dB)")] = None,
    min_psnr: Annotated[float | None, typer.Option("--min-psnr", help="min mean Y-PSNR vs HR (dB)")] = None,
    min_agreement: Annotated[float | None, typer.Option("--min-agreement", help="min sim-vs-deploy PSNR")] = None,
    max_images: Annotated[int | None, typer.Option("--max-images", min=1, help="validate the first N images")] = None,
    tile: Annotated[int | None, typer.Option("--tile", min=8, help="route LR tiles of this size to tiers")] = None,
    report_dir: Annotated[
        Path | None, typer.Option("--report", help="report folder (default BUILD.validate beside the build)")
    ] = None,
) -> None:
    """Re-validate a build folder against a dataset; non-zero exit when a threshold fails.

    The build folder is only read; reports go to --report DIR (default BUILD.validate/).
    """
    from srdeploy.validate.cli_support import validate_folder

    report, paths = validate_folder(
        build_dir, dataset, max_drop, max_image_drop, min_psnr, min_agreement, max_images, tile, report_dir
    )
    _print_summary(report)
    out.print(escape(f"reports: {', '.join(str(p) for p in paths.values())}"), soft_wrap=True)
    if report["verdict"] == "fail":
        raise typer.Exit(1)


@app.command()
def inspect(
    target: Annotated[Path, typer.Argument(help="build folder or plan.json")],
    all_layers: Annotated[bool, typer.Option("--all", help="list float layers too")] = True,
) -> None:
    """Per-layer bits, ranges, masks; which tensors are quantized and why others are not."""
    from srdeploy.inspect import inspect_table

    for table in inspect_table(target, all_layers):
        out.print(table)


@app.command()
def upscale(
    inp: Annotated[Path, typer.Argument(metavar="IN", help="image file or folder of images")],
    out_path: Annotated[
        str, typer.Argument(metavar="OUT", help="image file (by extension), or folder (ends with / or exists)")
    ],
    build_dir: Annotated[Path, typer.Option("--build", "-b", help="build folder written by srdeploy build")],
    tile: Annotated[int | None, typer.Option("--tile", min=8, help="LR tile size (default: automatic)")] = None,
    tier: Annotated[str, typer.Option("--tier", help="'auto' (route by image complexity) or a tier index")] = "auto",
    profile: Annotated[
        str | None, typer.Option("--profile", help="ort | trt | openvino (default: the backend's)")
    ] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="inference threads (default: all)")] = None,
    backend: Annotated[str, typer.Option("--backend", help="onnxruntime | openvino (CPU)")] = "onnxruntime",
    max_megapixels: Annotated[
        float | None, typer.Option("--max-megapixels", help="refuse larger inputs (megapixels; default 25)")
    ] = None,
) -> None:
    """Upscale an image, or every image in a folder, with a build folder's model."""
    from srdeploy.progress import RichProgress
    from srdeploy.runtime.cli_upscale import upscale_paths
    from srdeploy.runtime.upscaler import DEFAULT_MAX_MEGAPIXELS

    limit = DEFAULT_MAX_MEGAPIXELS if max_megapixels is None else max_megapixels
    summary = upscale_paths(
        inp, out_path, build_dir, tile, tier, profile, threads, RichProgress(err), max_megapixels=limit, backend=backend
    )
    # File names can contain brackets, which rich would read as markup.
    out.print(summary.describe(), markup=False, highlight=False)


@app.command()
def emit(
    build_dir: Annotated[Path, typer.Argument(help="build folder written by srdeploy build")],
    profile: Annotated[str, typer.Option("--profile", "-p", help="profile to emit (e.g. trt, ort)")],
    tier: Annotated[int | None, typer.Option("--tier", help="tier index (default: the default tier)")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="write the graph here")] = None,
    check: Annotated[bool, typer.Option("--check", help="compare with the build's own graph, byte for byte")] = False,
) -> None:
    """Re-emit a graph from the build's plan.json + model (no calibration); --check proves it reproduces."""
    from srdeploy.errors import SrdeployError
    from srdeploy.fsutil import atomic_write_bytes
    from srdeploy.stages.emit import emit_from_folder

    if out_file is None and not check:
        raise SrdeployError("nothing to do", "pass --out FILE to write the graph, or --check to compare it")
    data, own = emit_from_folder(build_dir, profile, tier)
    if out_file is not None:
        atomic_write_bytes(out_file, data)
        out.print(f"wrote {out_file} ({len(data)} bytes)", markup=False, highlight=False)
    if check:
        same = own.is_file() and own.read_bytes() == data
        out.print(f"{own}: {'identical' if same else 'DIFFERENT'} to the graph emitted from the plan", markup=False)
        if not same:
            raise typer.Exit(1)


@app.command("bench")
def bench_cmd(
    build_dir: Annotated[Path, typer.Argument(help="build folder written by srdeploy build")],
    size: Annotated[int, typer.Option("--size", help="LR input side (square)")] = 256,
    threads: Annotated[int, typer.Option("--threads", help="inference threads per runtime")] = 2,
    repeats: Annotated[int, typer.Option("--repeats", help="round-robin rounds (median reported)")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Latency and LR megapixels/s of every runtime x profile graph of a build, fp32 baselines included."""
    from srdeploy.bench import bench, bench_table

    result = bench(build_dir, size=size, threads=threads, repeats=repeats)
    if as_json:
        import json

        typer.echo(json.dumps(result, indent=1))
    else:
        out.print(bench_table(result))


@app.command("lint-trt")
def lint_trt_cmd(
    model: Annotated[Path, typer.Argument(help="QDQ ONNX for TensorRT, e.g. builds/<name>/trt/model.onnx")],
) -> None:
    """Check a QDQ ONNX graph against TensorRT 10/11 rules (no TensorRT or GPU needed)."""
    from srdeploy.passes.lint_trt import lint_trt_main

    if code := lint_trt_main(model):
        raise typer.Exit(code)


@app.command("eval")
def eval_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="bundled model name or checkpoint path")],
    dataset: Annotated[str, typer.Option("--dataset", "-d")] = "eval",
    max_images: Annotated[int | None, typer.Option("--max-images", min=1)] = None,
    arch: Annotated[str | None, typer.Option("--arch", help="as model.arch: detected when unset; spandrel")] = None,
    scale: Annotated[int | None, typer.Option("--scale", help="for multi-scale checkpoints")] = None,
) -> None:
    """fp32 model vs bicubic, per image and mean (Y-PSNR / SSIM, shave = scale)."""
    from srdeploy.validate.fp32_eval import eval_table

    out.print(eval_table(model, dataset, max_images, arch, scale))


def _print_summary(report: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    if not report.get("summary"):
        return
    t = Table(title=escape(f"{report.get('recipe', {}).get('name', '')}: {report.get('dataset')}"))
    for col in ("execution", "Y-PSNR", "SSIM", "drop vs fp32", "sim agreement (min dB)", "tiers"):
        t.add_column(col)
    b = report.get("bicubic", {})
    t.add_row("bicubic", f"{b.get('psnr_y', 0):.2f}", f"{b.get('ssim_y', 0):.4f}", "", "", "")
    for s in report["summary"]:
        t.add_row(
            escape(s["execution"]),
            f"{s['psnr_y']:.2f}",
            f"{s['ssim_y']:.4f}",
            "" if s["psnr_drop_db"] is None else f"{s['psnr_drop_db']:.3f}",
            "" if s["agreement_min_db"] is None else f"{s['agreement_min_db']:.1f}",
            ", ".join(f"{k}:{v}" for k, v in s["tier_usage"].items()),
        )
    out.print(t)
    verdict = str(report.get("verdict", ""))
    color = "green" if verdict == "pass" else "red"
    out.print(f"verdict: [bold {color}]{escape(verdict.upper())}[/]")
    for f in report.get("failures", []):
        out.print(f"  [red]✗[/] {escape(f)}")
    for w in report.get("warnings", []):
        out.print(f"  [bold yellow]![/] {escape(w)}")


def main() -> None:
    from srdeploy.entry import run

    sys.exit(run(app))


if __name__ == "__main__":
    main()
