"""N:M structured sparsity in TensorRT's layout.

For a conv weight [K, C, R, S]: for every output channel k and kernel position (r, s), each group
of M consecutive input channels keeps at most N non-zeros (2:4 is what sparse tensor cores run).
Masks keep the N largest magnitudes of each group. C must be a multiple of M (refused otherwise,
so the pattern never silently differs from what TensorRT checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np

from srdeploy.errors import PlanError


def _groups(weight: np.ndarray, m: int) -> np.ndarray:
    """[K, C, R, S] -> [K, R, S, C/m, m] view of input-channel groups."""
    if weight.ndim != 4:
        raise PlanError(f"N:M masks need a 4-D conv weight, got shape {weight.shape}", "only Conv2d is supported")
    k, c, r, s = weight.shape
    if c % m:
        raise PlanError(
            f"input channels {c} are not a multiple of M={m} (weight shape {weight.shape})",
            "exclude this layer (sparsity.include_roles) or pick an M that divides the channel count",
        )
    return weight.transpose(0, 2, 3, 1).reshape(k, r, s, c // m, m)


def nm_mask(weight: np.ndarray, n: int, m: int) -> np.ndarray:
    """Keep-mask (bool, same shape as ``weight``) with the N largest |w| of every group of M."""
    if not 0 < n <= m:
        raise PlanError(f"invalid N:M pattern {n}:{m}", "need 0 < N <= M")
    w = np.asarray(weight, dtype=np.float32)
    g = np.abs(_groups(w, m))
    # argsort is stable: equal magnitudes keep the lower channel index (deterministic masks).
    order = np.argsort(-g, axis=-1, kind="stable")
    keep_g = np.zeros_like(g, dtype=bool)
    np.put_along_axis(keep_g, order[..., :n], True, axis=-1)
    k, c, r, s = w.shape
    return keep_g.reshape(k, r, s, c).transpose(0, 3, 1, 2).copy()


def satisfies(weight: np.ndarray, n: int, m: int) -> bool:
    """True when every group of M consecutive input channels has at most N non-zeros."""
    try:
        g = _groups(np.asarray(weight), m)
    except PlanError:
        return False
    return bool(((g != 0).sum(-1) <= n).all())


def violations(weight: np.ndarray, n: int, m: int) -> int:
    """Number of groups breaking the pattern (for lint messages)."""
    g = _groups(np.asarray(weight), m)
    return int(((g != 0).sum(-1) > n).sum())


def density(mask: np.ndarray) -> float:
    return float(np.asarray(mask, dtype=bool).mean())


class _HasKeep(Protocol):
    keep: np.ndarray


def is_2of4(keep: np.ndarray) -> bool:
    """The one definition of "2:4 sparse" in srdeploy (rewrite metadata, the engine's SPARSE_WEIGHTS
    flag, the engine-vs-plan report): every group of 4 consecutive input channels keeps at most 2
    weights, with C a multiple of 4. It is a property of the kept weights, not of the mask's N:M
    label, because TensorRT checks the weights: a 1:4 or 2:8 mask always passes, a 1:3 mask always
    does too (a group of 4 overlaps at most two groups of 3), a 4:8 mask only when its choice happens
    to be 2:4, and an all-True keep labelled 2:4 does not."""
    return satisfies(np.asarray(keep), 2, 4)


def sparse_2of4_weights(masks: Mapping[str, _HasKeep]) -> list[str]:
    """Sorted weight names whose mask is 2:4 sparse (``is_2of4``)."""
    return sorted(name for name, mask in masks.items() if is_2of4(mask.keep))
