"""Post-training SLS-style layer-wise N:M under a MAC budget.

1. Sensitivity: for every eligible conv and every candidate N:M (besides dense), prune only that
   conv (magnitude mask) and measure the whole network's output MSE against the dense fp32 output
   on calibration LR patches. Cost: (eligible layers) x (sparse candidates) forward passes over
   ``sensitivity_patches`` patches.
2. Choice: a multiple-choice knapsack. Each eligible conv takes one option (dense or a candidate);
   option cost = the conv's MACs x N/M; minimise the summed sensitivity subject to
   sum(costs) + MACs of the non-eligible include_roles convs <= mac_budget x dense MACs of all
   include_roles convs (= body MACs by default). Solved by DP over MACs discretised into
   ``resolution`` bins, then repaired exactly (a cheaper option is forced on the layer with the
   smallest sensitivity increase per MAC saved until the exact float budget holds), so the budget
   is never exceeded. An infeasible budget (even the sparsest candidates exceed it) is refused.
3. The chosen masks are applied together once and the combined output error is reported beside
   the sum of the single-layer sensitivities (the additivity assumption behind step 2).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from srdeploy.errors import PlanError
from srdeploy.models.base import SRModel
from srdeploy.quant.apply import with_masks
from srdeploy.quant.plan import LayerInfo, NMMask
from srdeploy.recipe import SparsitySection
from srdeploy.sparsity.common import (
    DENSE,
    SENSITIVITY_BATCH,
    Pattern,
    budget_layers,
    channels_per_group,
    layer_row,
    mse,
    pick_patches,
    psnr_db,
    run,
    sensitivities,
    split_layers,
)
from srdeploy.sparsity.nm import nm_mask


def layer_options(layer: LayerInfo, options: Sequence[Pattern]) -> list[Pattern]:
    c = channels_per_group(layer)
    return [p for p in options if p == DENSE or c % p[1] == 0]


def solve_budget(
    costs: Sequence[Sequence[float]], values: Sequence[Sequence[float]], capacity: float, resolution: int = 4096
) -> list[int] | None:
    """Multiple-choice knapsack: pick one option per item minimising sum(values) with
    sum(costs) <= capacity (exactly, in float). Returns option indices, or None if infeasible."""
    if not costs:
        return []
    tol = 1e-9 * max(capacity, 1.0)
    if sum(min(r) for r in costs) > capacity + tol:
        return None
    unit = max(capacity, 1e-30) / resolution
    w = [[round(c / unit) for c in row] for row in costs]
    dp = np.full(resolution + 1, np.inf)
    dp[0] = 0.0
    choices = []
    for wr, vr in zip(w, values, strict=True):
        new = np.full(resolution + 1, np.inf)
        arg = np.full(resolution + 1, -1, dtype=np.int64)
        for j, (wij, vij) in enumerate(zip(wr, vr, strict=True)):
            if wij > resolution:
                continue
            cand = np.full(resolution + 1, np.inf)
            cand[wij:] = dp[: resolution + 1 - wij] + vij
            better = cand < new
            new[better], arg[better] = cand[better], j
        dp = new
        choices.append(arg)
    if np.isfinite(dp).any():
        c = int(np.argmin(dp))  # first minimum: the cheapest of equally good selections
        pick = [0] * len(costs)
        for i in range(len(costs) - 1, -1, -1):
            pick[i] = int(choices[i][c])
            c -= w[i][pick[i]]
    else:  # rounding made a feasible problem look infeasible: start from the cheapest options
        pick = [int(np.argmin(r)) for r in costs]
    # Exact repair: rounding may overshoot by < one bin per item.
    while sum(costs[i][j] for i, j in enumerate(pick)) > capacity + tol:
        best: tuple[float, int, int] | None = None
        for i, j in enumerate(pick):
            for k, ck in enumerate(costs[i]):
                saved = costs[i][j] - ck
                if saved > 0:
                    rate = (values[i][k] - values[i][j]) / saved
                    if best is None or rate < best[0]:
                        best = (rate, i, k)
        if best is None:  # cannot happen: the all-cheapest selection fits
            return None
        pick[best[1]] = best[2]
    return pick


def _masks_for(
    model: SRModel, eligible: Sequence[LayerInfo], options: dict[str, list[Pattern]], pick: list[int]
) -> tuple[dict[str, NMMask], dict[str, Pattern]]:
    params = dict(model.module.named_parameters())
    masks: dict[str, NMMask] = {}
    chosen: dict[str, Pattern] = {}
    for x, j in zip(eligible, pick, strict=True):
        n, m = options[x.weight][j]
        chosen[x.weight] = (n, m)
        if (n, m) != DENSE:
            keep = nm_mask(params[x.weight].detach().float().cpu().numpy(), n, m)
            masks[x.weight] = NMMask(n=n, m=m, keep=keep)
    return masks, chosen


def _rows(
    layers: Sequence[LayerInfo],
    masks: dict[str, NMMask],
    skipped: dict[str, str],
    sens: dict[str, dict[Pattern, float]],
    chosen: dict[str, Pattern],
) -> list[dict[str, Any]]:
    rows = []
    for x in layers:
        row = layer_row(x, masks.get(x.weight), skipped.get(x.weight, ""))
        if x.weight in sens:
            row["sensitivity"] = sens[x.weight][chosen[x.weight]]
            row["sensitivities"] = {("dense" if q == DENSE else f"{q[0]}:{q[1]}"): v for q, v in sens[x.weight].items()}
        rows.append(row)
    return rows


def choose(
    model: SRModel,
    layers: Sequence[LayerInfo],
    patches: np.ndarray,
    cfg: SparsitySection,
    seed: int,
    progress: Callable[[int], None] | None = None,
    resolution: int = 4096,
) -> tuple[dict[str, NMMask], dict[str, Any]]:
    t0 = time.perf_counter()
    opts = cfg.sls_options
    eligible, skipped = split_layers(layers, cfg.include_roles, [m for _, m in opts[1:]] or [cfg.m])
    options = {x.weight: layer_options(x, opts) for x in eligible}
    scope = budget_layers(layers, cfg.include_roles)
    dense_macs = sum(x.macs_per_lr_pixel for x in scope)
    fixed = sum(x.macs_per_lr_pixel for x in scope if x.weight in skipped)
    capacity = cfg.mac_budget * dense_macs - fixed
    min_cost = fixed + sum(x.macs_per_lr_pixel * min(n / m for n, m in options[x.weight]) for x in eligible)
    if min_cost > cfg.mac_budget * dense_macs * (1 + 1e-9):
        raise PlanError(
            f"sparsity.mac_budget={cfg.mac_budget} is below what the candidates can reach "
            f"({min_cost / max(dense_macs, 1e-30):.3f} of the dense MACs of {list(cfg.include_roles)} convs, "
            f"{len(skipped)} of them cannot be pruned)",
            "raise mac_budget, add sparser candidates (e.g. [1, 8]) or include more roles",
        )
    calib = pick_patches(patches, cfg.sensitivity_patches, seed)
    sens, dense_out = sensitivities(model, eligible, options, calib, SENSITIVITY_BATCH, progress)
    costs = [[x.macs_per_lr_pixel * n / m for n, m in options[x.weight]] for x in eligible]
    values = [[sens[x.weight][p] for p in options[x.weight]] for x in eligible]
    pick = solve_budget(costs, values, capacity, resolution)
    if pick is None:  # excluded above; kept as a guard
        raise PlanError("no per-layer selection fits sparsity.mac_budget", "raise mac_budget")
    masks, chosen = _masks_for(model, eligible, options, pick)
    combined = mse(run(with_masks(model.module, masks), calib, SENSITIVITY_BATCH), dense_out)
    achieved = fixed + sum(costs[i][j] for i, j in enumerate(pick))
    rows = _rows(layers, masks, skipped, sens, chosen)
    predicted = float(sum(values[i][j] for i, j in enumerate(pick)))
    report = dict(
        policy="sls",
        metric="output MSE vs dense fp32 on calibration LR patches (RGB in [0, 1])",
        candidates=[f"{n}:{m}" for n, m in opts[1:]],
        mac_budget=cfg.mac_budget,
        budget_roles=list(cfg.include_roles),
        dense_macs_per_lr_pixel=dense_macs,
        achieved_macs_per_lr_pixel=achieved,
        achieved_fraction=achieved / dense_macs if dense_macs else 1.0,
        predicted_mse=predicted,
        measured_mse=combined,
        measured_psnr_vs_dense_db=psnr_db(combined),
        patches=len(calib),
        forward_passes=1 + sum(len(v) - 1 for v in options.values()) + 1,
        seconds=round(time.perf_counter() - t0, 2),
        layers=rows,
    )
    return masks, report
