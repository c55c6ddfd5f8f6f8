"""The two entry points the pipeline calls, and the bias-update helper.

    model, structure = prune_structure(model, cfg)       # before to_deploy_form (BN not yet folded)
    model = to_deploy_form(model)
    layers = layer_infos(model, conv_order(model.module), quantize_roles)
    masks, report = choose_masks(model, layers, patches, cfg, seed)
    apply_bias_updates(model, report)                     # before export_onnx: biases live in fp32.onnx

``choose_masks`` never modifies ``model``; accepted bias corrections come back as plain lists in
``report["bias_updates"]`` (bias parameter name -> values), applied by ``apply_bias_updates``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from srdeploy.models.base import SRModel
from srdeploy.quant.plan import LayerInfo, NMMask
from srdeploy.sparsity import bias_correction
from srdeploy.sparsity.common import budget_layers, layer_row, masked_copy, mse, pick_patches, psnr_db, run
from srdeploy.sparsity.config import SparsityConfig
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


def choose_masks(
    model: SRModel, layers: tuple[LayerInfo, ...], patches: np.ndarray, cfg: SparsityConfig, seed: int
) -> tuple[dict[str, NMMask], dict[str, Any]]:
    """N:M masks of ``cfg.policy`` for the deploy-form ``model`` and a JSON-ready report."""
    policy = POLICIES[cfg.policy]
    if policy.masks is None:
        masks: dict[str, NMMask] = {}
        reason = "structural policy: no N:M masks" if policy.structure else "sparsity disabled"
        report: dict[str, Any] = dict(policy=cfg.policy, layers=[layer_row(x, None, reason) for x in layers])
    else:
        masks, report = policy.masks(model, layers, np.asarray(patches), cfg, seed)
    report["config"] = cfg.to_dict()
    report["macs_unit"] = "MACs per LR (input) pixel; masked convs at their density"
    report["macs"] = _mac_summary(layers, masks, cfg.include_roles)
    report["bias_updates"] = {}
    if masks and cfg.refit:
        from srdeploy.sparsity.refit import refit

        masks, rows = refit(model, masks, [x.weight for x in layers], np.asarray(patches), batch=cfg.batch_size)
        report["refit"] = rows
        report["bias_correction"] = dict(applied=False, reason="superseded by the least-squares re-fit (refit)")
    elif masks and cfg.bias_correction:
        fit, held = _split(np.asarray(patches), cfg.sensitivity_patches, seed)
        updates, bc = bias_correction.correct(model.module, masks, fit, held, cfg.batch_size)
        report["bias_correction"] = bc
        report["bias_updates"] = {k: [float(v) for v in a] for k, a in sorted(updates.items())}
    else:
        report["bias_correction"] = dict(
            applied=False, reason="disabled (sparsity.bias_correction)" if masks else "no masks"
        )
    # measured on the masks returned (a policy's own measurement is redone when the re-fit changed them)
    if masks and (cfg.refit or "measured_mse" not in report):
        sub = pick_patches(patches, cfg.sensitivity_patches, seed)
        err = mse(run(masked_copy(model.module, masks), sub, cfg.batch_size), run(model.module, sub, cfg.batch_size))
        report.update(measured_mse=err, measured_psnr_vs_dense_db=psnr_db(err), patches=len(sub))
    report["eligibility"] = model_eligibility(layers, masks, cfg.include_roles)
    return masks, report


def apply_bias_updates(model: SRModel, report_or_updates: Mapping[str, Any]) -> SRModel:
    """Write accepted bias corrections into ``model.module`` (in place); accepts the report or the
    ``bias_updates`` mapping itself. Returns ``model``."""
    updates = report_or_updates.get("bias_updates", report_or_updates)
    if updates:
        bias_correction.with_biases(model.module, updates)
    return model


def prune_structure(model: SRModel, cfg: SparsityConfig) -> tuple[SRModel, dict[str, Any]]:
    """Structural pruning of ``cfg.policy`` (bn_filter) on the model *before* BatchNorm folding.

    Returns (model, {"pruned_channels": {conv1 module: kept indices}, "report": {...}}); identity
    with empty ``pruned_channels`` for the other policies.
    """
    policy = POLICIES[cfg.policy]
    if policy.structure is None:
        return model, dict(pruned_channels={}, report=dict(policy=cfg.policy, note="no structural change"))
    return policy.structure(model, cfg)
