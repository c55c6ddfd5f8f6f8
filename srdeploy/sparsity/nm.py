"""N:M structured sparsity in TensorRT's layout.

For a conv weight [K, C, R, S]: for every output channel k and kernel position (r, s), each group
of M consecutive input channels keeps at most N non-zeros (2:4 is what sparse tensor cores run).
Masks keep the N largest magnitudes of each group. C must be a multiple of M (refused otherwise,
so the pattern never silently differs from what TensorRT checks).
"""

from __future__ import annotations

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
