"""Label-free re-fit of pruned convs (one-shot, layer by layer, SparseGPT-style least squares).

For each masked conv, in network order, with every earlier conv already pruned and re-fitted:
collect the Gram matrix H = X^T X of its im2col input (plus a constant column for the bias) on
calibration patches; re-select the N:M mask by activation-aware importance |w_j| * sqrt(H_jj)
(a weight on a channel that is rarely large matters less than its magnitude says); then solve,
per output channel, min ||w X - w' X||^2 over the kept weights and the bias (ridge-damped). The
target is the dense layer on the same (already pruned upstream) input.
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


class _Stop(Exception):
    pass


def input_gram(module: nn.Module, conv: nn.Conv2d, patches: np.ndarray, batch: int = 8) -> np.ndarray:
    """H (C*kh*kw + 1)^2 of the conv's im2col input over ``patches`` (last index: the bias column)."""
    grams: list[torch.Tensor] = []

    def hook(_m: nn.Module, args: tuple) -> None:
        x = args[0].detach().float()
        cols = F.unfold(x, conv.kernel_size, dilation=conv.dilation, padding=conv.padding, stride=conv.stride)
        cols = cols.transpose(1, 2).reshape(-1, cols.shape[1])
        cols = torch.cat([cols, torch.ones(cols.shape[0], 1, dtype=cols.dtype)], 1)
        grams.append((cols.T @ cols).double())  # float32 GEMM per batch, summed in float64
        raise _Stop

    handle = conv.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            for i in range(0, len(patches), batch):
                with contextlib.suppress(_Stop):
                    module(torch.from_numpy(patches[i : i + batch]))
    finally:
        handle.remove()
    return torch.stack(grams).sum(0).numpy()


def importance_mask(w: np.ndarray, h: np.ndarray, n: int, m: int) -> np.ndarray:
    """N:M keep-mask by |w| * sqrt(E[x^2]) of the weight's input (im2col order: c, kh, kw)."""
    _, c, kh, kw = w.shape
    scale = np.sqrt(np.maximum(np.diag(h)[:-1], 0.0)).reshape(c, kh, kw)
    return nm_mask(np.abs(w) * scale[None], n, m)


def solve_rows(w: np.ndarray, b: np.ndarray, keep: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares re-fit of each output channel's kept weights and bias on the Gram matrix."""
    k = w.shape[0]
    flat = np.concatenate([w.reshape(k, -1), b[:, None]], 1).astype(np.float64)
    kept = np.concatenate([keep.reshape(k, -1), np.ones((k, 1), bool)], 1)
    damp = DAMPING * float(np.mean(np.diag(h))) * np.eye(h.shape[0])
    hd = h + damp
    out = np.zeros_like(flat)
    target = flat @ h  # w H: the dense layer's correlation with the input
    for o in range(k):
        idx = np.flatnonzero(kept[o])
        out[o, idx] = np.linalg.solve(hd[np.ix_(idx, idx)], target[o, idx])
    return out[:, :-1].reshape(w.shape).astype(np.float32), out[:, -1].astype(np.float32)


def _rel_error(w_new: np.ndarray, b_new: np.ndarray, w: np.ndarray, b: np.ndarray, h: np.ndarray) -> float:
    d = np.concatenate([(w_new - w).reshape(w.shape[0], -1), (b_new - b)[:, None]], 1)
    ref = np.concatenate([w.reshape(w.shape[0], -1), b[:, None]], 1)
    num = float(np.einsum("oi,ij,oj->", d, h, d))
    den = float(np.einsum("oi,ij,oj->", ref, h, ref))
    return float(np.sqrt(max(num, 0.0) / max(den, 1e-30)))


def refit(
    model: SRModel,
    masks: dict[str, NMMask],
    order: Sequence[str],
    patches: np.ndarray,
    batch: int = 8,
) -> tuple[dict[str, NMMask], list[dict[str, Any]]]:
    """Re-fitted masks (keep re-selected at the same N:M, weight, bias) for every masked conv, and a
    per-layer report."""
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
        h = input_gram(work, conv, patches, batch)
        keep = importance_mask(w, h, mask.n, mask.m)
        assert satisfies(np.where(keep, 1.0, 0.0), mask.n, mask.m)
        before = _rel_error(w * keep, b, w, b, h)
        w_new, b_new = solve_rows(w, b, keep, h)
        w_new = np.where(keep, w_new, 0.0).astype(np.float32)
        after = _rel_error(w_new, b_new, w, b, h)
        if after >= before:  # never worse than plain masking on the calibration input
            w_new, b_new = (w * keep).astype(np.float32), b.astype(np.float32)
            after = before
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w_new))
            if conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(b_new))
        out[weight] = replace(mask, keep=keep, weight=w_new, bias=b_new if conv.bias is not None else None, fit="refit")
        rows.append(
            dict(
                weight=weight,
                refit=True,
                rel_output_error_masked=round(before, 5),
                rel_output_error_refit=round(after, 5),
            )
        )
    for weight, mask in masks.items():
        out.setdefault(weight, mask)
    return out, rows
