"""The two entry points the sparsity step of a build calls (stages/sparsity.py):

    structure, report = choose_structure(model_as_loaded, cfg)   # BatchNorm statistics decide (bn_filter)
    masks, report = choose_masks(deploy_form_model, layers, patches, cfg, seed)

Neither modifies its model: the results are plan data (QuantPlan.structure, QuantPlan.masks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from srdeploy.models.base import SRModel
from srdeploy.quant.apply import with_masks
from srdeploy.quant.plan import ChannelPruning, LayerInfo, NMMask
from srdeploy.recipe import SparsitySection
from srdeploy.sparsity import bias_correction
from srdeploy.sparsity.common import SENSITIVITY_BATCH, budget_layers, layer_row, mse, pick_patches, psnr_db, run
from srdeploy.sparsity.eligibility import model_eligibility
from srdeploy.sparsity.policies import POLICIES


def _mac_summary(layers: Sequence[LayerInfo], masks: Mapping[str, NMMask], roles: Sequence[str]) -> dict[str, float]:
    def total(xs: Sequence[LayerInfo], sparse: bool) -> float:
        return sum(
            x.macs_per_lr_pixel * (float(masks[x.weight].keep.mean()) if sparse and x.weight in masks else 1.0)
            for x in xs
        )

    scope = budget_layers(layers, roles)
    dense_scope, sparse_scope = total(scope, False), total(scope, True)
    return dict(
        roles_dense_macs_per_lr_pixel=dense_scope,
        roles_sparse_macs_per_lr_pixel=sparse_scope,
        roles_fraction=sparse_scope / dense_scope if dense_scope else 1.0,
        total_dense_macs_per_lr_pixel=total(layers, False),
        total_sparse_macs_per_lr_pixel=total(layers, True),
    )


def _split(patches: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fitting and held-out patch sets (disjoint when there are at least 2 x count patches)."""
    if len(patches) >= 2 * count:
        both = pick_patches(patches, 2 * count, seed)
        order = np.random.default_rng(seed + 1).permutation(len(both))
        return both[order[:count]], both[order[count:]]
    sub = pick_patches(patches, count, seed)
    return sub, sub


MASK_STEPS = 3  # progress steps of choose_masks: masks chosen, weights fitted, error measured


def choose_masks(
    model: SRModel,
    layers: tuple[LayerInfo, ...],
    patches: np.ndarray,
    cfg: SparsitySection,
    seed: int,
    advance: Callable[[int], None] = lambda _n: None,
) -> tuple[dict[str, NMMask], dict[str, Any]]:
    """N:M masks of ``cfg.policy`` for the deploy-form ``model`` (re-fitted or bias-corrected when asked: the
    fitted weights and biases travel inside the masks) and a JSON-ready report. ``model`` is not modified.
    ``advance(k)``: k of MASK_STEPS done."""
    policy = POLICIES[cfg.policy]
    if policy.masks is None:
        masks: dict[str, NMMask] = {}
        reason = "structural policy: no N:M masks" if policy.structure else "sparsity disabled"
        report: dict[str, Any] = dict(policy=cfg.policy, layers=[layer_row(x, None, reason) for x in layers])
    else:
        masks, report = policy.masks(model, layers, np.asarray(patches), cfg, seed)
    report["config"] = cfg.model_dump(mode="json")
    report["macs_unit"] = "MACs per LR (input) pixel; masked convs at their density"
    report["macs"] = _mac_summary(layers, masks, cfg.include_roles)
    advance(1)
    masks, report["bias_correction"], refit_rows = _fit_kept_weights(model, layers, masks, patches, cfg, seed)
    advance(2)
    if refit_rows is not None:
        from srdeploy.sparsity.refit_guard import summary

        report["refit"] = refit_rows
        report["refit_summary"] = summary(refit_rows, _guard(cfg), cfg.refit_augment)
    if masks and (cfg.refit or "measured_mse" not in report):
        # measured on the masks returned (a policy's own measurement is redone when the re-fit changed them)
        sub = pick_patches(patches, cfg.sensitivity_patches, seed)
        dense = run(model.module, sub, SENSITIVITY_BATCH)
        err = mse(run(with_masks(model.module, masks), sub, SENSITIVITY_BATCH), dense)
        report.update(measured_mse=err, measured_psnr_vs_dense_db=psnr_db(err), patches=len(sub))
    report["eligibility"] = model_eligibility(layers, masks, cfg.include_roles)
    advance(3)
    return masks, report


def _fit_kept_weights(
    model: SRModel,
    layers: Sequence[LayerInfo],
    masks: dict[str, NMMask],
    patches: np.ndarray,
    cfg: SparsitySection,
    seed: int,
) -> tuple[dict[str, NMMask], dict[str, Any], list | None]:
    """Least-squares re-fit (sparsity.refit) or bias correction (sparsity.bias_correction) of masked convs."""
    if not masks:
        return masks, dict(applied=False, reason="no masks"), None
    if cfg.refit:
        from srdeploy.sparsity.refit import refit

        order = [x.weight for x in layers]
        args = (SENSITIVITY_BATCH, _guard(cfg), cfg.refit_augment)
        fitted, rows = refit(model, masks, order, np.asarray(patches), *args)
        return fitted, dict(applied=False, reason="superseded by the least-squares re-fit (refit)"), rows
    if cfg.bias_correction:
        fit, held = _split(np.asarray(patches), cfg.sensitivity_patches, seed)
        corrected, bc = bias_correction.correct(model.module, masks, fit, held, SENSITIVITY_BATCH)
        return corrected, bc, None
    return masks, dict(applied=False, reason="disabled (sparsity.bias_correction)"), None


def _guard(cfg: SparsitySection) -> Any:
    """The re-fit's held-out guard of the recipe (sparsity.refit_guard), or None."""
    from srdeploy.sparsity.refit_guard import Guard

    return Guard(ridges=cfg.refit_ridges, holdout=cfg.refit_holdout) if cfg.refit_guard else None


def choose_structure(model: SRModel, cfg: SparsitySection) -> tuple[tuple[ChannelPruning, ...], dict[str, Any]]:
    """Structural pruning entries of ``cfg.policy`` (bn_filter), decided on the model *as loaded* (BatchNorm
    not folded); empty for the other policies."""
    policy = POLICIES[cfg.policy]
    if policy.structure is None:
        return (), dict(policy=cfg.policy, note="no structural change")
    return policy.structure(model, cfg)
