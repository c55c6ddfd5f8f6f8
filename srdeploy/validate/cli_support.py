"""`srdeploy validate BUILD`: re-run validation of a build folder with CLI thresholds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from srdeploy.buildfolder import BuildFolder
from srdeploy.data.sets import load_pairs
from srdeploy.errors import BuildFolderError
from srdeploy.models.deploy_form import load_deploy_model
from srdeploy.quant.plan_io import load_plan
from srdeploy.recipe import load_recipe
from srdeploy.validate.run import file_sizes, validate, write_reports


def validate_folder(
    build_dir: Path,
    dataset: str | None = None,
    max_drop: float | None = None,
    max_image_drop: float | None = None,
    min_psnr: float | None = None,
    min_agreement: float | None = None,
    max_images: int | None = None,
    tile: int | None = None,
    report_stem: str = "validate",
    progress: Any | None = None,
) -> tuple[dict[str, Any], dict[str, Path]]:
    folder = BuildFolder(Path(build_dir))
    if not folder.root.is_dir():
        raise BuildFolderError(f"build folder not found: {folder.root}", "run srdeploy build first")
    manifest = folder.verify()
    recipe = load_recipe(folder.recipe)
    model = load_deploy_model(folder.root)
    plan = load_plan(folder.plan)
    cli = dict(
        max_psnr_drop_db=max_drop,
        max_image_psnr_drop_db=max_image_drop,
        min_psnr_db=min_psnr,
        min_agreement_db=min_agreement,
    )
    thresholds = recipe.validate_.thresholds.model_copy(update={k: v for k, v in cli.items() if v is not None})
    dataset = dataset or recipe.validate_.dataset
    pairs = load_pairs(dataset, model.scale, max_images or recipe.validate_.max_images)
    header = dict(
        recipe=dict(name=recipe.name, digest=recipe.digest),
        model=dict(name=model.name, arch=model.arch, scale=model.scale),
        dataset=dataset,
        build=dict(srdeploy_version=manifest.get("srdeploy_version")),
    )
    report, _ = validate(
        folder,
        model,
        plan,
        pairs,
        thresholds,
        header,
        tile=tile or recipe.validate_.tile,
        threads=recipe.validate_.threads,
        overlap=recipe.validate_.tile_overlap,
        visuals=f"{report_stem}_images",
        extra_sections={"artifacts": file_sizes(folder.root)},
        progress=progress,
    )
    # Reports are written beside the build's own, without touching the build's manifest.
    paths = write_reports(folder.root, report, stem=report_stem)
    return report, paths
