"""Held-out guard of the N:M re-fit (sparsity.refit_guard) and dihedral augmentation of its patches.

A re-fit solved on calibration statistics can reproduce the dense layer on those patches and not on other
content (few patches, many inputs per output: 64 x 9 + 1 unknowns per output channel). The guard holds out a
deterministic share of the patches (``holdout_groups``: evenly spaced indices); the re-fit's forward passes
accumulate the held-out Gram beside the fitting one (sparsity/refit.input_grams: no extra pass). Per layer,
candidates are the plain mask (the policy's magnitude mask, trained weights and bias) and the re-fit of the
importance mask and of the magnitude mask at each ridge of ``sparsity.refit_ridges`` (damped towards the
masked trained weights, so a large ridge approaches plain masking), all solved on the fitting Gram and scored
by relative output error on the held-out Gram. The winner is solved again on all patches (the Grams' sum).
The choice lands in the mask's ``fit`` (``guard:magnitude`` or ``guard:<mask kind>@<ridge>``) and the report.

``views`` > 1 (sparsity.refit_augment): each patch also enters the Grams under views - 1 of its flips and
90-degree rotations (a patch's views stay on its side of the split); cost grows linearly with views.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from srdeploy.quant.plan import NMMask
from srdeploy.sparsity.refit import _rel_error, importance_mask, solve_rows

FIT, HELD = 0, 1


@dataclass(frozen=True)
class Guard:
    ridges: tuple[float, ...] = (0.01, 0.1, 1.0)
    holdout: float = 0.25


def holdout_groups(count: int, fraction: float) -> np.ndarray:
    """Per patch FIT (0) or HELD (1): evenly spaced indices, round(count x fraction) of them, at least one of
    each side when there are two patches or more (with one patch: all FIT)."""
    if count < 2:
        return np.zeros(count, np.int64)
    held = min(count - 1, max(1, round(count * fraction)))
    idx = np.floor((np.arange(held) + 1) * count / held).astype(np.int64) - 1
    groups = np.zeros(count, np.int64)
    groups[idx] = HELD
    return groups


def dihedral(x: np.ndarray, k: int) -> np.ndarray:
    """View k (0..7) of NCHW patches: rotation by k % 4 quarter turns, then a horizontal flip when k >= 4."""
    y = np.rot90(x, k % 4, axes=(2, 3))
    return np.ascontiguousarray(y[..., ::-1] if k >= 4 else y)


def augment(patches: np.ndarray, groups: np.ndarray, views: int) -> tuple[np.ndarray, np.ndarray]:
    """Each patch in ``views`` dihedral views (the first as it is; patch i's others cycle through the seven
    non-identity views from i, so the set covers them all); rotations only for square patches."""
    if views <= 1:
        return patches, groups
    square = patches.shape[2] == patches.shape[3]
    pool = list(range(1, 8)) if square else [4, 6]  # 4: h-flip, 6: v-flip (rotation by 2 + h-flip)
    out, labels = [patches], [groups]
    for j in range(1, views):
        ks = [pool[(i + j - 1) % len(pool)] for i in range(len(patches))]
        out.append(np.stack([dihedral(p[None], k)[0] for p, k in zip(patches, ks, strict=True)]))
        labels.append(groups)
    return np.concatenate(out), np.concatenate(labels)


def fitting_set(patches: np.ndarray, guard: Guard | None, views: int) -> tuple[np.ndarray, np.ndarray]:
    """The patches the re-fit's Grams see and each one's group (all FIT without a guard)."""
    groups = holdout_groups(len(patches), guard.holdout) if guard else np.zeros(len(patches), np.int64)
    return augment(patches, groups, views)


def _candidates(w: np.ndarray, mask: NMMask, h: np.ndarray, ridges: Sequence[float]) -> list[tuple[str, Any]]:
    magnitude = np.asarray(mask.keep, bool)  # the policy's mask
    keeps = {"importance": importance_mask(w, h, mask.n, mask.m), "magnitude": magnitude}
    return [("plain", magnitude)] + [(f"{kind}@{r:g}", keeps[kind]) for kind in keeps for r in ridges]


def _solve(w: np.ndarray, b: np.ndarray, name: str, keep: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, ...]:
    if name == "plain":
        return (w * keep).astype(np.float32), b.astype(np.float32)
    ridge = float(name.split("@")[1])
    w_new, b_new = solve_rows(w, b, keep, h, ridge=ridge, prior=(w * keep, b))
    return np.where(keep, w_new, 0.0).astype(np.float32), b_new


def choose(
    w: np.ndarray, b: np.ndarray, mask: NMMask, h_fit: np.ndarray, h_held: np.ndarray, guard: Guard
) -> tuple[NMMask, dict[str, Any]]:
    """The candidate with the least held-out relative output error, re-solved on all patches; report row."""
    errors = {}
    for name, keep in _candidates(w, mask, h_fit, guard.ridges):
        w_new, b_new = _solve(w, b, name, keep, h_fit)
        errors[name] = _rel_error(w_new, b_new, w, b, h_held)
    best = min(errors, key=lambda k: (errors[k], k != "plain"))  # ties keep the plain mask
    h_all = h_fit + h_held
    keep = dict(_candidates(w, mask, h_all, guard.ridges))[best]
    row: dict[str, Any] = dict(refit=best != "plain", choice=best, held_out_rel_error=_rounded(errors))
    if best == "plain":
        return replace(mask, keep=keep, weight=None, bias=None, fit="guard:magnitude"), row
    w_new, b_new = _solve(w, b, best, keep, h_all)
    row.update(rel_output_error_masked=round(_rel_error(w * keep, b, w, b, h_all), 5))
    row.update(rel_output_error_refit=round(_rel_error(w_new, b_new, w, b, h_all), 5))
    return replace(mask, keep=keep, weight=w_new, bias=b_new, fit=f"guard:{best}"), row


def _rounded(errors: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 5) for k, v in errors.items()}


def summary(rows: Sequence[dict[str, Any]], guard: Guard | None, views: int) -> dict[str, Any]:
    """The re-fit's part of the sparsity report: settings, layers per choice, mean held-out errors."""
    out: dict[str, Any] = dict(guard=guard is not None, augment_views=views, layers=len(rows))
    if guard is None:
        out["refitted"] = sum(bool(r.get("refit")) for r in rows)
        return out
    out.update(ridges=list(guard.ridges), holdout=guard.holdout)
    chosen = [r for r in rows if "choice" in r]
    out["choices"] = {c: sum(r["choice"] == c for r in chosen) for c in sorted({r["choice"] for r in chosen})}
    if chosen:
        held = [r["held_out_rel_error"] for r in chosen]
        out["mean_held_out_rel_error_plain"] = round(float(np.mean([e["plain"] for e in held])), 5)
        out["mean_held_out_rel_error_chosen"] = round(float(np.mean([min(e.values()) for e in held])), 5)
    return out
