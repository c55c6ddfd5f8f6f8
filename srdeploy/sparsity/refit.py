"""Label-free re-fit of pruned convs (one-shot, layer by layer, SparseGPT-style least squares).

For each masked conv, in network order, with every earlier conv already pruned and re-fitted:
collect the Gram matrix H = X^T X of its im2col input (plus a constant column for the bias) on
calibration patches; re-select the N:M mask by activation-aware importance |w_j| * sqrt(H_jj)
(a weight on a channel that is rarely large matters less than its magnitude says); then solve,
per output channel, min ||w X - w' X||^2 over the kept weights and the bias (ridge-damped). The
target is the dense layer on the same (already pruned upstream) input.
With ``guard`` (sparsity.refit_guard, sparsity/refit_guard.py) the same forward passes accumulate a
second Gram on a held-out share of the patches, and each layer keeps its plain mask or the re-fit
(mask kind and ridge) that reproduces the dense layer best on the held-out input.
Re-fitted values live in the plan's masks; the fp32 reference stays the trained model.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from srdeploy.models.base import SRModel
from srdeploy.quant.plan import NMMask
from srdeploy.sparsity.nm import nm_mask, satisfies

DAMPING = 0.01
SOLVE_BYTES = 256 << 20  # float64 sub-matrices stacked per batched solve


class _Stop(Exception):
    pass


def input_grams(
    module: nn.Module, conv: nn.Conv2d, patches: np.ndarray, groups: np.ndarray, batch: int = 8
) -> list[np.ndarray]:
    """One Gram H (C*kh*kw + 1)^2 of the conv's im2col input per patch group (``groups``: a label 0..G-1 per
    patch; last index of H: the bias column), all from the same forward passes (each stopped at the conv)."""
    count = int(groups.max()) + 1 if len(groups) else 1
    sums: list[torch.Tensor | float] = [0.0] * count
    start = [0]

    def hook(_m: nn.Module, args: tuple) -> None:
        x = args[0].detach().float()
        cols = F.unfold(x, conv.kernel_size, dilation=conv.dilation, padding=conv.padding, stride=conv.stride)
        cols = torch.cat([cols.transpose(1, 2), torch.ones(*cols.shape[::2], 1, dtype=cols.dtype)], 2)
        labels = torch.from_numpy(groups[start[0] : start[0] + len(x)])
        for g in torch.unique(labels).tolist():
            c = cols[labels == g].reshape(-1, cols.shape[2])
            sums[g] = sums[g] + (c.T @ c).double()  # float32 GEMM per batch, summed in float64
        raise _Stop

    handle = conv.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            for i in range(0, len(patches), batch):
                start[0] = i
                with contextlib.suppress(_Stop):
                    module(torch.from_numpy(np.ascontiguousarray(patches[i : i + batch])))
    finally:
        handle.remove()
    size = conv.in_channels // conv.groups * int(np.prod(conv.kernel_size)) + 1
    return [s.numpy() if isinstance(s, torch.Tensor) else np.zeros((size, size)) for s in sums]


def input_gram(module: nn.Module, conv: nn.Conv2d, patches: np.ndarray, batch: int = 8) -> np.ndarray:
    """H of the conv's im2col input over all ``patches``."""
    return input_grams(module, conv, patches, np.zeros(len(patches), np.int64), batch)[0]


def importance_mask(w: np.ndarray, h: np.ndarray, n: int, m: int) -> np.ndarray:
    """N:M keep-mask by |w| * sqrt(E[x^2]) of the weight's input (im2col order: c, kh, kw)."""
    _, c, kh, kw = w.shape
    scale = np.sqrt(np.maximum(np.diag(h)[:-1], 0.0)).reshape(c, kh, kw)
    return nm_mask(np.abs(w) * scale[None], n, m)


def solve_rows(
    w: np.ndarray,
    b: np.ndarray,
    keep: np.ndarray,
    h: np.ndarray,
    ridge: float = DAMPING,
    prior: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares re-fit of each output channel's kept weights and bias on the Gram matrix, damped by
    ``ridge`` x mean(diag H) towards ``prior`` (weight, bias; zero when None). Batched float64 solves."""
    k = w.shape[0]
    flat = np.concatenate([w.reshape(k, -1), b[:, None]], 1).astype(np.float64)
    kept = np.concatenate([keep.reshape(k, -1), np.ones((k, 1), bool)], 1)
    damp = ridge * float(np.mean(np.diag(h)))
    hh = torch.from_numpy(np.ascontiguousarray(h, dtype=np.float64))
    target = torch.from_numpy(flat) @ hh  # w H: the dense layer's correlation with the input
    if prior is not None:
        target += damp * torch.from_numpy(np.concatenate([prior[0].reshape(k, -1), prior[1][:, None]], 1))
    out = torch.zeros(flat.shape, dtype=torch.float64)
    counts = kept.sum(1)
    for count in np.unique(counts):
        rows = np.flatnonzero(counts == count)
        step = max(1, SOLVE_BYTES // (8 * int(count) ** 2))
        for r in (rows[i : i + step] for i in range(0, len(rows), step)):
            idx = torch.from_numpy(np.stack([np.flatnonzero(kept[o]) for o in r]))
            ro = torch.from_numpy(r)[:, None]
            sub = hh[idx[:, :, None], idx[:, None, :]] + damp * torch.eye(int(count), dtype=torch.float64)
            out[ro, idx] = torch.linalg.solve(sub, target[ro, idx].unsqueeze(-1)).squeeze(-1)
    res = out.numpy()
    return res[:, :-1].reshape(w.shape).astype(np.float32), res[:, -1].astype(np.float32)


def _rel_error(w_new: np.ndarray, b_new: np.ndarray, w: np.ndarray, b: np.ndarray, h: np.ndarray) -> float:
    """sqrt(||(w' - w) X||^2 / ||w X||^2) on the input whose Gram is ``h``."""
    d = torch.from_numpy(np.concatenate([(w_new - w).reshape(w.shape[0], -1), (b_new - b)[:, None]], 1))
    ref = torch.from_numpy(np.concatenate([w.reshape(w.shape[0], -1), b[:, None]], 1))
    hh = torch.from_numpy(np.asarray(h, dtype=np.float64))
    num = float(((d.double() @ hh) * d.double()).sum())
    den = float(((ref.double() @ hh) * ref.double()).sum())
    return float(np.sqrt(max(num, 0.0) / max(den, 1e-30)))


def _unguarded(w: np.ndarray, b: np.ndarray, mask: NMMask, h: np.ndarray) -> tuple[NMMask, dict[str, Any]]:
    """Importance mask + re-fit on all patches, kept unless it is worse than the plain mask on them."""
    keep = importance_mask(w, h, mask.n, mask.m)
    assert satisfies(np.where(keep, 1.0, 0.0), mask.n, mask.m)
    before = _rel_error(w * keep, b, w, b, h)
    w_new, b_new = solve_rows(w, b, keep, h)
    w_new = np.where(keep, w_new, 0.0).astype(np.float32)
    after = _rel_error(w_new, b_new, w, b, h)
    if after >= before:  # never worse than plain masking on the calibration input
        w_new, b_new = (w * keep).astype(np.float32), b.astype(np.float32)
        after = before
    fitted = replace(mask, keep=keep, weight=w_new, bias=b_new, fit="refit")
    return fitted, dict(refit=True, rel_output_error_masked=round(before, 5), rel_output_error_refit=round(after, 5))


def refit(
    model: SRModel,
    masks: dict[str, NMMask],
    order: Sequence[str],
    patches: np.ndarray,
    batch: int = 8,
    guard: Any = None,
    views: int = 1,
) -> tuple[dict[str, NMMask], list[dict[str, Any]]]:
    """Re-fitted masks (keep re-selected at the same N:M, weight, bias) for every masked conv, and a
    per-layer report. ``guard``: a refit_guard.Guard (held-out choice per layer); ``views``: dihedral views
    of each patch in the Grams (refit_guard.augment)."""
    from srdeploy.sparsity import refit_guard

    patches, groups = refit_guard.fitting_set(np.asarray(patches, np.float32), guard, views)
    work = copy.deepcopy(model.module).eval()
    named = dict(work.named_modules())
    out: dict[str, NMMask] = {}
    rows = []
    for weight in [w for w in order if w in masks]:
        mask = masks[weight]
        conv = named[weight[: -len(".weight")]]
        assert isinstance(conv, nn.Conv2d)
        if conv.groups != 1:
            out[weight] = mask
            rows.append(dict(weight=weight, refit=False, reason="grouped conv"))
            continue
        w = conv.weight.detach().double().numpy()
        b = conv.bias.detach().double().numpy() if conv.bias is not None else np.zeros(w.shape[0])
        grams = input_grams(work, conv, patches, groups, batch)
        if guard is None:
            fitted, row = _unguarded(w, b, mask, sum(grams[1:], grams[0]))
        else:
            fitted, row = refit_guard.choose(w, b, mask, grams[0], grams[1], guard)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(fitted.pruned(w)))
            if conv.bias is not None and fitted.bias is not None:
                conv.bias.copy_(torch.from_numpy(fitted.bias))
        out[weight] = fitted if conv.bias is not None else replace(fitted, bias=None)
        rows.append(dict(weight=weight, **row))
    for weight, mask in masks.items():
        out.setdefault(weight, mask)
    return out, rows
