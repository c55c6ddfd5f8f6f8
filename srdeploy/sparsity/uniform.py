"""Uniform N:M: one pattern (sparsity.n : sparsity.m) for every eligible conv.

Eligible: role in ``include_roles`` (body by default, so the first conv (head) and the last (tail)
stay dense) and C (input channels per group) a multiple of M; others are listed with the reason.
Masks keep the N largest |w| of each group of M consecutive input channels (sparsity.nm).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from srdeploy.models.base import SRModel
from srdeploy.quant.plan import LayerInfo, NMMask
from srdeploy.recipe import SparsitySection
from srdeploy.sparsity.common import SENSITIVITY_BATCH, layer_row, pick_patches, sensitivities, split_layers
from srdeploy.sparsity.nm import nm_mask, satisfies


def uniform_masks(
    model: SRModel, layers: Sequence[LayerInfo], n: int, m: int, roles: Sequence[str]
) -> tuple[dict[str, NMMask], dict[str, str]]:
    """weight name -> NMMask for every eligible layer, and weight name -> reason for the rest."""
    eligible, skipped = split_layers(layers, roles, m)
    if n == m:
        return {}, {**skipped, **{x.weight: f"{n}:{m} is dense" for x in eligible}}
    params = dict(model.module.named_parameters())
    masks: dict[str, NMMask] = {}
    for x in eligible:
        w = params[x.weight].detach().float().cpu().numpy()
        keep = nm_mask(w, n, m)
        assert satisfies(np.where(keep, w, 0.0), n, m)
        masks[x.weight] = NMMask(n=n, m=m, keep=keep)
    return masks, skipped


def choose(
    model: SRModel, layers: Sequence[LayerInfo], patches: np.ndarray, cfg: SparsitySection, seed: int
) -> tuple[dict[str, NMMask], dict[str, Any]]:
    """Policy entry point. Masks need no data; the patches measure each masked layer's sensitivity
    (whole-network output MSE vs dense when only that layer is masked: one forward pass per layer)."""
    masks, skipped = uniform_masks(model, layers, cfg.n, cfg.m, cfg.include_roles)
    masked = [x for x in layers if x.weight in masks]
    calib = pick_patches(patches, cfg.sensitivity_patches, seed)
    sens, _ = sensitivities(model, masked, {x.weight: [(cfg.n, cfg.m)] for x in masked}, calib, SENSITIVITY_BATCH)
    rows = []
    for x in layers:
        row = layer_row(x, masks.get(x.weight), skipped.get(x.weight, ""))
        if x.weight in sens:
            row["sensitivity"] = sens[x.weight][(cfg.n, cfg.m)]
        rows.append(row)
    return masks, dict(policy="uniform", pattern=f"{cfg.n}:{cfg.m}", layers=rows)
