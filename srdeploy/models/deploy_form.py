"""The model in deploy form: loaded from a recipe, with BatchNorm, residual scaling and pixel-range constants
folded into the convs (the function is unchanged: this is still the model as trained). Saved with every build
(safetensors + JSON) so a build folder can be re-validated and re-emitted from its plan without the original
checkpoint. Pruning, masks and equalization are plan data, applied by quant.apply.apply_plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from srdeploy.errors import BuildFolderError
from srdeploy.fsutil import atomic_write_text
from srdeploy.models.base import SRModel
from srdeploy.models.loading import load_model, load_state_dict, save_checkpoint


def load_for_recipe(section: Any) -> SRModel:
    """``section``: the recipe's model section (name or path, arch, scale, rgb_range)."""
    overrides = {k: v for k, v in (("scale", section.scale), ("rgb_range", section.rgb_range)) if v is not None}
    source = section.name or section.path
    return load_model(source, arch=section.arch, name=section.name or "", **overrides)


def _fold_structure(module: Any) -> list[str]:
    """The structural folds (models/subpixel_fold.py) a network's deploy form gets; applied in place."""
    from srdeploy.models.common import MeanShiftResNet
    from srdeploy.models.subpixel_fold import fold_output_shuffle

    return ["output_shuffle"] if isinstance(module, MeanShiftResNet) and fold_output_shuffle(module) else []


def deploy_folds(module: Any) -> list[str]:
    return ["output_shuffle"] if "output_shuffle" in getattr(module, "_modules", {}) else []


def to_deploy_form(model: SRModel) -> SRModel:
    fuse = getattr(model.module, "fuse_for_deploy", None)
    if callable(fuse):
        fuse()
    if not deploy_folds(model.module):
        _fold_structure(model.module)
    model.module.eval()
    return model


def save_deploy_model(model: SRModel, folder: Path) -> None:
    save_checkpoint(model.module, folder / "model.safetensors")
    folds = deploy_folds(model.module)
    doc = dict(
        arch=model.arch,
        name=model.name,
        scale=model.scale,
        hparams=dict(model.hparams),
        source=Path(model.source).name,
        **({"deploy_folds": folds} if folds else {}),
        **({} if model.size_rules.trivial else {"size_rules": model.size_rules.to_json()}),
    )
    atomic_write_text(folder / "model.json", json.dumps(doc, indent=1, sort_keys=True) + "\n")


def load_deploy_model(folder: Path) -> SRModel:
    """Rebuild the deploy-form module of a build folder."""
    meta_path, weights = folder / "model.json", folder / "model.safetensors"
    if not meta_path.is_file() or not weights.is_file():
        raise BuildFolderError(f"{folder} lacks model.json / model.safetensors", "rebuild the folder")
    from srdeploy.metadata import check_model_doc, read_json

    meta = read_json(meta_path, BuildFolderError, "model metadata")
    check_model_doc(meta, meta_path)
    if str(meta["arch"]).startswith("spandrel:"):
        return _spandrel_deploy_model(meta, weights)
    from srdeploy.models.registry import get_architecture

    try:
        module = get_architecture(meta["arch"]).build(**meta["hparams"])
        # Folding on the fresh module gives the deploy-form structure; the saved weights then fit it.
        module.fuse_for_deploy()
        if meta.get("deploy_folds") and _fold_structure(module) != meta["deploy_folds"]:
            raise ValueError(f"deploy folds {meta['deploy_folds']} do not apply to this network")
    except (TypeError, ValueError, RuntimeError, KeyError, AttributeError) as exc:
        raise BuildFolderError(
            f"{meta_path} describes no buildable {meta['arch']} model ({type(exc).__name__}: {exc})",
            "rebuild the folder",
        ) from None
    sd = load_state_dict(weights)
    try:
        module.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    except (RuntimeError, TypeError) as exc:
        raise BuildFolderError(
            f"{weights} does not fit the recorded architecture: {exc}", "rebuild the folder"
        ) from exc
    module.eval()
    return SRModel(
        module=module,
        arch=meta["arch"],
        scale=int(meta["scale"]),
        hparams=meta["hparams"],
        source=str(weights),
        name=meta.get("name", ""),
    )


def _spandrel_deploy_model(meta: dict[str, Any], weights: Path) -> SRModel:
    """spandrel detects the network again from the saved weights (a spandrel module is saved as it was loaded)."""
    from srdeploy.models.spandrel_adapter import load_with_spandrel

    model = load_with_spandrel(weights, name=meta.get("name", ""))
    if model.arch != meta["arch"] or model.scale != int(meta["scale"]):
        raise BuildFolderError(
            f"{weights} loads as {model.arch} x{model.scale}, model.json says {meta['arch']} x{meta['scale']}",
            "rebuild the folder",
        )
    return model
