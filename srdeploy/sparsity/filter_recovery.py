"""Label-free recovery after filter pruning (sparsity.recovery): a least-squares re-fit of each pruned
group's consumer conv against the dense model's features on the calibration patches.

Consumers in network order, each with every earlier group already pruned and re-fitted: the Gram matrix H
of the consumer's full (dense-producer) im2col input is collected during one forward pass; the consumer's
kept input columns and bias are solved (ridge-damped, as in sparsity/refit.py) to reproduce the dense
consumer's output on that input, ``min ||W X + b - (W' X_kept + b')||^2``. Nothing is stored outside the
plan: the re-fitted weight and bias travel in ``ChannelPruning.consumer_weight`` / ``consumer_bias``, so
the plan alone reproduces the build; fp32 (the model as trained) is untouched.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from srdeploy.models.base import SRModel
from srdeploy.quant.plan import ChannelPruning
from srdeploy.sparsity.common import pick_patches
from srdeploy.sparsity.refit import _rel_error

MAX_PATCHES = 64  # recovery runs the calibration patches as one batch
MAX_ROWS = 32768  # im2col rows (pixels) per Gram matrix: enough for 64 x 9 + 1 unknowns, bounded cost
DAMPING = 0.01


class _Done(Exception):
    pass


def _gram(x: torch.Tensor, conv: nn.Conv2d) -> np.ndarray:
    cols = F.unfold(x.float(), conv.kernel_size, dilation=conv.dilation, padding=conv.padding, stride=conv.stride)
    cols = cols.transpose(1, 2).reshape(-1, cols.shape[1])
    if cols.shape[0] > MAX_ROWS:
        rows = torch.from_numpy(np.random.default_rng(0).choice(cols.shape[0], MAX_ROWS, replace=False))
        cols = cols[rows]
    cols = torch.cat([cols, torch.ones(cols.shape[0], 1, dtype=cols.dtype)], 1)
    return (cols.T @ cols).double().numpy()


def _solve(w: np.ndarray, b: np.ndarray, keep: list[int], h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares for all output channels at once (they share the kept columns)."""
    k, c = w.shape[:2]
    idx = (np.arange(c * w.shape[2] * w.shape[3]).reshape(c, -1)[keep]).ravel()
    idx = np.concatenate([idx, [h.shape[0] - 1]])
    flat = np.concatenate([w.reshape(k, -1), b[:, None]], 1)
    hd = h + DAMPING * float(np.mean(np.diag(h))) * np.eye(h.shape[0])
    sol = np.linalg.solve(hd[np.ix_(idx, idx)], (flat @ h)[:, idx].T).T
    out = np.zeros_like(flat)
    out[:, idx] = sol
    return out[:, :-1].reshape(w.shape), out[:, -1]


def _plain(group: ChannelPruning, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The consumer of the plain surgery at the dense shape: removed columns 0, constants in the bias."""
    removed = list(group.removed)
    out_w = w.copy()
    out_w[:, removed] = 0.0
    out_b = b.copy()
    if group.constants is not None and removed:
        out_b = out_b + (w[:, removed].sum(axis=(2, 3)) * np.asarray(group.constants, np.float64)).sum(axis=1)
    return out_w, out_b


def _fit(conv: nn.Conv2d, group: ChannelPruning, x: torch.Tensor) -> tuple[ChannelPruning, dict[str, Any]]:
    """Re-fit ``conv`` (consumer of ``group``) on its full input ``x``; leaves the chosen weights in ``conv``
    (at the dense shape, removed columns zero) so the rest of the pass sees the pruned network."""
    w = conv.weight.detach().double().cpu().numpy()
    b = conv.bias.detach().double().cpu().numpy() if conv.bias is not None else np.zeros(w.shape[0])
    h = _gram(x, conv)
    w_plain, b_plain = _plain(group, w, b)
    w_new, b_new = _solve(w, b, list(group.keep), h)
    before, after = _rel_error(w_plain, b_plain, w, b, h), _rel_error(w_new, b_new, w, b, h)
    row = dict(consumer=group.consumers[0], rel_output_error_pruned=round(before, 5))
    row["rel_output_error_refit"] = round(after, 5)
    refit = after < before and conv.bias is not None  # never worse than the plain surgery on this input
    use_w, use_b = (w_new, b_new) if refit else (w_plain, b_plain)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(use_w.astype(np.float32)))
        if conv.bias is not None:
            conv.bias.copy_(torch.from_numpy(use_b.astype(np.float32)))
    if not refit:
        return group, {**row, "refit": False}
    fitted = replace(
        group,
        constants=None,
        consumer_weight=np.ascontiguousarray(w_new[:, list(group.keep)], np.float32),
        consumer_bias=b_new.astype(np.float32),
    )
    return fitted, {**row, "refit": True}


def recover(
    model: SRModel, structure: tuple[ChannelPruning, ...], patches: np.ndarray
) -> tuple[tuple[ChannelPruning, ...], list[dict[str, Any]]]:
    """``structure`` with re-fitted consumers (groups with one consumer that is not also a producer, and has a
    bias), and a row per group. One forward pass of the patches: each consumer is fitted, in network order,
    on its input with every earlier group already pruned and re-fitted. ``model`` (deploy form, as trained)
    is not modified."""
    work = copy.deepcopy(model.module).eval()
    fittable = {
        g.consumers[0]: g for g in structure if len(g.consumers) == 1 and not set(g.consumers) & set(g.producers)
    }
    fitted: dict[str, tuple[ChannelPruning, dict[str, Any]]] = {}

    def hook(conv: nn.Module, args: tuple, weight: str) -> None:
        fitted[weight] = _fit(conv, fittable[weight], args[0].detach())
        if len(fitted) == len(fittable):
            raise _Done

    handles = [
        work.get_submodule(w.removesuffix(".weight")).register_forward_pre_hook(lambda m, a, w=w: hook(m, a, w))
        for w in fittable
    ]
    x = torch.from_numpy(np.ascontiguousarray(pick_patches(np.asarray(patches, np.float32), MAX_PATCHES, 0)))
    try:
        with torch.no_grad(), contextlib.suppress(_Done):
            work(x)
    finally:
        for h in handles:
            h.remove()
    out, rows = [], []
    for g in structure:
        got = fitted.get(g.consumers[0]) if g.consumers and g.consumers[0] in fittable else None
        out.append(got[0] if got else g)
        rows.append(got[1] if got else dict(consumer=list(g.consumers), refit=False, reason="not one plain consumer"))
    return tuple(out), rows
