"""The sparsity policies, by recipe name (sparsity.policy). Explicit: no import-time discovery.

A policy may choose N:M masks (after BatchNorm folding, on the deploy-form model) and/or change
the structure (before folding). ``api.choose_masks`` / ``api.prune_structure`` dispatch here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np

from srdeploy.models.base import SRModel
from srdeploy.quant.plan import ChannelPruning, LayerInfo, NMMask
from srdeploy.recipe import SparsitySection
from srdeploy.sparsity import bn_filter, filter_prune, sls, uniform

MaskFn = Callable[
    [SRModel, Sequence[LayerInfo], np.ndarray, SparsitySection, int], tuple[dict[str, NMMask], dict[str, Any]]
]
StructureFn = Callable[[SRModel, SparsitySection], tuple[tuple[ChannelPruning, ...], dict[str, Any]]]


@dataclass(frozen=True)
class Policy:
    name: str
    summary: str
    masks: MaskFn | None = None
    structure: StructureFn | None = None


POLICIES: dict[str, Policy] = {
    "none": Policy("none", "dense: no masks, no structural change"),
    "uniform": Policy(
        "uniform", "one N:M pattern (n:m) for every eligible conv, magnitude masks", masks=uniform.choose
    ),
    "sls": Policy(
        "sls",
        "per-layer N:M from the candidates under a MAC budget, by measured output sensitivity (knapsack DP)",
        masks=sls.choose,
    ),
    "bn_filter": Policy(
        "bn_filter",
        "data-free removal of always-zero / constant channels inside conv-BN-ReLU-conv blocks (from gamma, beta)",
        structure=bn_filter.prune_filters,
    ),
    "l1_filter": Policy(
        "l1_filter",
        "baseline filter pruning: the same share of every block's filters by smallest L1 norm (needs a target)",
        structure=filter_prune.prune_to_target,
    ),
}

assert tuple(POLICIES) == get_args(SparsitySection.model_fields["policy"].annotation), "recipe and POLICIES disagree"
