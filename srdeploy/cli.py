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

from srdeploy import __version__, cli_ui

cli_ui.hide_flag_metavars()

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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars or informational lines")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug lines on stderr")] = False,
    log_file: Annotated[
        Path | None, typer.Option("--log-file", help="append every log line (debug, with times) to this file")
    ] = None,
) -> None:
    """srdeploy: calibrated low-bit QDQ ONNX for TensorRT and ONNX Runtime, validated."""
    from srdeploy.entry import set_debug

    set_debug(debug)
    cli_ui.configure(quiet=quiet, verbose=verbose, log_file=log_file)


@app.command()
def build(
    recipe: Annotated[Path, typer.Option("--recipe", "-r", help="recipe YAML")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="output folder (default builds/<name>)")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="override a recipe key: a.b=value")] = None,
    run_validation: Annotated[
        bool, typer.Option("--validate/--no-validate", help="validate the build (thresholds gate the exit code)")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as one JSON document")] = False,
    calib_cache: Annotated[
        Path | None,
        typer.Option("--calibration-cache", help="import these ranges if the file exists, else export them there"),
    ] = None,
    load_cache: Annotated[
        Path | None, typer.Option("--load-calibration-cache", help="import the ranges of this cache (must exist)")
    ] = None,
    min_shapes: Annotated[str | None, typer.Option("--minShapes", help="as trtexec, e.g. input:1x3x16x16")] = None,
    opt_shapes: Annotated[str | None, typer.Option("--optShapes", help="as trtexec (tensorrt.opt_shape)")] = None,
    max_shapes: Annotated[str | None, typer.Option("--maxShapes", help="as trtexec (tensorrt.max_shape)")] = None,
) -> None:
    """Calibrate, rewrite and validate: one build folder per recipe.

    DIR is replaced only if it is empty or an srdeploy build; a build that fails validation is
    written to DIR.failed/ and DIR keeps the previous build.
    """
    from srdeploy.recipe import load_recipe

    shapes = dict(min_shape=min_shapes, opt_shape=opt_shapes, max_shape=max_shapes)
    overrides = [*(overrides or []), *(f"tensorrt.{k}={v}" for k, v in shapes.items() if v is not None)]
    r = load_recipe(recipe, overrides)  # before importing torch: recipe errors come back fast
    from srdeploy.calib.cache import cache_options, write_cache
    from srdeploy.pipeline import build as run_build

    imported, export_to = cache_options(calib_cache, load_cache)
    with cli_ui.json_stdout(as_json) as emit:
        result = run_build(r, out_dir, cli_ui.progress(err), run_validation, calibration_cache=imported)
    if export_to is not None:
        write_cache(export_to, result.plan)
        err.print(escape(f"calibration cache written: {export_to}"), soft_wrap=True)
    if as_json:
        cache = None if export_to is None else str(export_to)
        verdict = result.report.get("verdict")
        emit(dict(build_folder=str(result.out_dir), verdict=verdict, calibration_cache=cache, report=result.report))
        if result.report.get("verdict") == "fail":
            raise typer.Exit(1)
        return
    cli_ui.print_summary(out, result.report)
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
    as_json: Annotated[bool, typer.Option("--json", help="print the report as one JSON document")] = False,
) -> None:
    """Re-validate a build folder against a dataset; non-zero exit when a threshold fails.

    The build folder is only read; reports go to --report DIR (default BUILD.validate/).
    """
    from srdeploy.validate.cli_support import validate_folder

    with cli_ui.json_stdout(as_json) as emit:
        report, paths = validate_folder(
            build_dir, dataset, max_drop, max_image_drop, min_psnr, min_agreement, max_images, tile, report_dir,
            cli_ui.progress(err),
        )
    if as_json:
        emit(dict(verdict=report["verdict"], reports={k: str(p) for k, p in paths.items()}, report=report))
        if report["verdict"] == "fail":
            raise typer.Exit(1)
        return
    cli_ui.print_summary(out, report)
    out.print(escape(f"reports: {', '.join(str(p) for p in paths.values())}"), soft_wrap=True)
    if report["verdict"] == "fail":
        raise typer.Exit(1)


@app.command()
def inspect(
    target: Annotated[Path, typer.Argument(help="build folder or plan.json")],
    all_layers: Annotated[bool, typer.Option("--all/--quantized-only", help="list float layers too")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the plan's layers as one JSON document")] = False,
) -> None:
    """Per-layer bits, ranges, masks; which tensors are quantized and why others are not."""
    from srdeploy.inspect import inspect_data, inspect_table

    if as_json:
        with cli_ui.json_stdout(True) as emit:
            data = inspect_data(target, all_layers)
        emit(data)
        return
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
    from srdeploy.runtime.cli_upscale import upscale_paths
    from srdeploy.runtime.upscaler import DEFAULT_MAX_MEGAPIXELS

    limit = DEFAULT_MAX_MEGAPIXELS if max_megapixels is None else max_megapixels
    summary = upscale_paths(
        inp, out_path, build_dir, tile, tier, profile, threads, cli_ui.progress(err),
        max_megapixels=limit, backend=backend,
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

    with cli_ui.json_stdout(as_json) as emit:
        result = bench(build_dir, size=size, threads=threads, repeats=repeats)
    if as_json:
        emit(result)
    else:
        out.print(bench_table(result))


@app.command("lint-trt")
def lint_trt_cmd(
    model: Annotated[Path, typer.Argument(help="QDQ ONNX for TensorRT, e.g. builds/<name>/trt/model.onnx")],
    as_json: Annotated[bool, typer.Option("--json", help="print the findings as one JSON document")] = False,
) -> None:
    """Check a QDQ ONNX graph against TensorRT 10/11 rules (no TensorRT or GPU needed)."""
    from srdeploy.passes.lint_trt import lint_trt, lint_trt_main

    if as_json:
        with cli_ui.json_stdout(True) as emit:
            report = lint_trt(model)
        emit(report.as_dict())
        if not report.ok:
            raise typer.Exit(1)
        return
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

    out.print(eval_table(model, dataset, max_images, arch, scale, progress=cli_ui.progress(err)))


def main() -> None:
    from srdeploy.entry import run

    sys.exit(run(app))


if __name__ == "__main__":
    main()
