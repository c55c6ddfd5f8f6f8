"""`srdeploy validate BUILD`: re-run validation of a build folder with CLI thresholds.

The build folder is only read (its checksums stay valid, a CI cache of it stays clean). Reports go
to a report folder, by default ``BUILD.validate/`` beside the build, published like a build: staged
under a temporary name, swapped in whole, and only over an absent or empty folder or an earlier
report folder (manifest kind ``validate-report``).
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

from srdeploy.buildfolder import BuildFolder, check_replaceable, failed_path, write_manifest
from srdeploy.data.sets import load_pairs
from srdeploy.errors import BuildFolderError, DataError
from srdeploy.fsutil import atomic_folder
from srdeploy.models.deploy_form import load_deploy_model
from srdeploy.progress import Progress, SilentProgress
from srdeploy.quant.plan_io import check_plan_fits, load_plan
from srdeploy.recipe import Thresholds, load_recipe
from srdeploy.validate.run import file_sizes, validate, validate_steps, write_reports

REPORT_SUFFIX = ".validate"
REPORT_STEM = "validate"
IMAGES = "images"


def default_report_dir(build_dir: Path) -> Path:
    """``BUILD.validate`` beside the build (as the user wrote the path, unless it ends in . or ..)."""
    root = Path(build_dir)
    if root.name in ("", ".", ".."):
        root = Path(os.path.abspath(root))
    return root.with_name(root.name + REPORT_SUFFIX)


def _open_build(build_dir: Path) -> tuple[BuildFolder, dict[str, Any]]:
    folder = BuildFolder(Path(build_dir))
    if not folder.root.is_dir():
        failed = failed_path(Path(os.path.abspath(build_dir)))
        hint = f"its last build failed validation and is in {failed}" if failed.is_dir() else "run srdeploy build first"
        raise BuildFolderError(f"build folder not found: {folder.root}", hint)
    return folder, folder.verify()


def _load_checked(folder: BuildFolder) -> tuple[Any, Any, Any]:
    """Recipe, deployed model and plan of a verified folder, checked against each other."""
    recipe = load_recipe(folder.recipe)
    model = load_deploy_model(folder.root)
    plan = load_plan(folder.plan)
    check_plan_fits(plan, model.module, folder.root)
    if plan.model.scale != model.scale:
        raise BuildFolderError(f"{folder.root}: plan.json and model.json disagree on the scale", "rebuild the folder")
    return recipe, model, plan


def isa_change_note(folder: BuildFolder) -> str | None:
    """A warning when the build was validated on a CPU of another INT8 class (VNNI or not) than this one:
    ONNX Runtime's u8 x s8 kernels give other results without VNNI (profiles/ort_avx2.py)."""
    import json

    from srdeploy.machine import has_vnni

    try:
        built_on = json.loads((folder.root / "report.json").read_text())["machine"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    here = has_vnni()
    if built_on.get("vnni") is None or here is None or built_on["vnni"] == here:
        return None
    kinds = {True: "with VNNI", False: "without VNNI (AVX2 only)"}
    return (
        f"warning: the build was validated on {built_on.get('cpu', 'another CPU')} {kinds[built_on['vnni']]}; this CPU "
        f"is {kinds[here]}: ONNX Runtime's int8 kernels differ between the two, so these numbers are this CPU's"
        + ("" if here else " (build the ort_avx2 profile for a graph that computes the same on both)")
    )


# sections the build recorded in its report.json, carried into validate.md (fusion is measured again here)
BUILD_SECTIONS = (
    "calibration_warnings",
    "lint",
    "tensorrt",
    "sparsity",
    "equalization",
    "layer_bits",
    "refinement",
    "sensitivity",
    "float_tier",
    "passes",
)


def build_sections(folder: BuildFolder, plan: Any) -> dict[str, Any]:
    """Artifacts, the build's lint / TensorRT / pass records, and ONNX Runtime fusion on this machine."""
    import json

    from srdeploy.stages.validation import fusion_sections

    try:
        recorded = json.loads((folder.root / "report.json").read_text())
    except (OSError, ValueError):
        recorded = {}
    recorded = recorded if isinstance(recorded, dict) else {}
    out: dict[str, Any] = {"artifacts": file_sizes(folder.root)}
    out.update({k: recorded[k] for k in BUILD_SECTIONS if recorded.get(k)})
    return {**out, **fusion_sections(folder, plan)}


def _header(recipe: Any, model: Any, dataset: str, folder: BuildFolder, manifest: dict[str, Any]) -> dict[str, Any]:
    return dict(
        recipe=dict(name=recipe.name, digest=recipe.digest),
        model=dict(name=model.name, arch=model.arch, scale=model.scale),
        dataset=dataset,
        build=dict(path=str(folder.root), srdeploy_version=manifest.get("srdeploy_version")),
    )


def _thresholds(recipe: Any, cli: dict[str, float | None]) -> Thresholds:
    return recipe.validate_.thresholds.model_copy(update={k: v for k, v in cli.items() if v is not None})


def _check_report_dir(folder: Any, report_dir: Path, check: Any) -> None:
    """The report folder is outside the build and replaceable: refused before the slow part."""
    absolute, root = Path(os.path.abspath(report_dir)), Path(os.path.abspath(folder.root))
    if absolute == root or root in absolute.parents:
        raise BuildFolderError(
            f"report folder {report_dir} is the build folder or inside it", "pass a --report folder outside the build"
        )
    check(absolute)


def validate_folder(
    build_dir: Path,
    dataset: str | None = None,
    max_drop: float | None = None,
    max_image_drop: float | None = None,
    min_psnr: float | None = None,
    min_agreement: float | None = None,
    max_images: int | None = None,
    tile: int | None = None,
    report_dir: Path | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Validate ``build_dir`` (read only); write reports into ``report_dir`` (default BUILD.validate)."""
    if max_images is not None and max_images < 1:
        raise DataError(f"--max-images {max_images} must be >= 1", "omit it to validate every image")
    folder, manifest = _open_build(build_dir)
    report_dir = Path(report_dir) if report_dir is not None else default_report_dir(folder.root)
    check = partial(check_replaceable, kind="validate-report")
    _check_report_dir(folder, report_dir, check)
    recipe, model, plan = _load_checked(folder)
    cli = dict(
        max_psnr_drop_db=max_drop,
        max_image_psnr_drop_db=max_image_drop,
        min_psnr_db=min_psnr,
        min_agreement_db=min_agreement,
    )
    dataset = dataset or recipe.validate_.dataset
    pairs = load_pairs(dataset, model.scale, max_images or recipe.validate_.max_images)
    header = _header(recipe, model, dataset, folder, manifest)
    isa_note = isa_change_note(folder)
    stage = (progress or SilentProgress()).stage(f"validate {len(pairs)} image(s)", total=validate_steps(pairs))
    with atomic_folder(report_dir, check=check) as tmp, stage as advance:
        report, _ = validate(
            folder,
            model,
            plan,
            pairs,
            _thresholds(recipe, cli),
            header,
            tile=tile or recipe.validate_.tile,
            threads=recipe.validate_.threads,
            overlap=recipe.validate_.tile_overlap,
            # An absolute folder: validate() joins it to the build root, which keeps it as given.
            visuals=str(tmp / IMAGES),
            extra_sections=build_sections(folder, plan),
            progress=advance,
            reference=recipe.validate_.reference,
        )
        report["visuals"] = {k: f"{IMAGES}/{Path(v).name}" for k, v in report.get("visuals", {}).items()}
        if isa_note:
            report["notes"] = [isa_note, *report.get("notes", [])]
        paths = write_reports(tmp, report, stem=REPORT_STEM)
        write_manifest(tmp, dict(kind="validate-report", build=str(folder.root)))
    return report, {k: Path(report_dir) / p.name for k, p in paths.items()}
