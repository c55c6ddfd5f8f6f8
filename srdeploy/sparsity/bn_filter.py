"""Data-free BN-based filter pruning for conv-BN-ReLU-conv blocks (METHODS.md §3).

Applies to blocks with ``conv1 -> bn1 (BatchNorm2d) -> act (ReLU) -> conv2 [-> bn2]`` (SRResNet
ResBlocks with bn=True), *before* BatchNorm is folded. A channel's BN output is about
N(β, γ²), so after the ReLU:

    P(active) = Φ(β/|γ|),   mean = β·Φ(β/|γ|) + |γ|·φ(β/|γ|)

* dead channel: P(active) < bn_threshold; removed (exact when the channel is really always 0).
* constant channel: β > 0 and |γ| / median_layer(|γ|) < bn_threshold; removed and its constant
  value (the mean above) folded into what follows conv2: ``bn2.running_mean -= Σ_rs W2[:, j] · mean_j``
  (no new parameter, so parameter names and the reload path stay the same), or into conv2's bias
  when there is no bn2 and conv2 has one; otherwise constant channels are kept. Approximate:
  conv2 zero-pads, so the folded constant is exact only away from the 1-pixel border.
* at most floor(bn_max_fraction x C) channels of a block are removed (lowest scores first), and at
  least one is kept. Only block-internal channels (conv1 out / bn1 / conv2 in) are pruned; the
  residual stream (shared by the Adds) keeps its width.

``prune_filters`` returns a pruned copy (new, smaller Conv2d / BatchNorm2d modules under the same
parameter names) and {"pruned_channels": {conv1 module: kept indices}, "report": {...}};
``apply_channel_pruning`` repeats the surgery on a fresh module (build-folder reload).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from srdeploy.errors import BuildFolderError
from srdeploy.models.base import SRModel
from srdeploy.sparsity.config import SparsityConfig

APPROXIMATION_NOTE = (
    "constant channels are folded as their expected post-ReLU value; conv2 zero-pads, so the fold is "
    "exact only away from a 1-pixel border of each feature map"
)


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.vectorize(math.erfc, otypes=[float])(-x / math.sqrt(2.0))  # erfc: accurate far in the lower tail


def _norm_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def channel_stats(bn: nn.BatchNorm2d) -> dict[str, np.ndarray]:
    """P(active), post-ReLU mean and relative spread |γ|/median|γ| of each channel, from γ, β only."""
    gamma = np.abs(bn.weight.detach().double().cpu().numpy()) if bn.affine else np.ones(bn.num_features)
    beta = bn.bias.detach().double().cpu().numpy() if bn.affine else np.zeros(bn.num_features)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(gamma > 0, beta / np.where(gamma > 0, gamma, 1.0), np.sign(beta) * np.inf)
    z = np.where(np.isnan(z), -np.inf, z)  # γ = β = 0: always exactly 0
    finite = np.isfinite(z)
    p_active = np.where(finite, _norm_cdf(np.where(finite, z, 0.0)), (z > 0).astype(float))
    pdf = np.where(finite, _norm_pdf(np.where(finite, z, 0.0)), 0.0)
    mean = np.where(finite, beta * p_active + gamma * pdf, np.maximum(beta, 0.0))
    ref = float(np.median(gamma)) or float(gamma.max()) or 1.0
    return dict(p_active=p_active, mean=mean, rel_spread=gamma / ref, beta=beta)


def prunable_blocks(module: nn.Module) -> dict[str, nn.Module]:
    """Block path -> block, for blocks with conv1 -> BatchNorm2d bn1 -> ReLU act -> conv2."""
    out = {}
    for name, m in module.named_modules():
        c1, b1, act, c2 = (getattr(m, a, None) for a in ("conv1", "bn1", "act", "conv2"))
        if (
            isinstance(c1, nn.Conv2d)
            and isinstance(b1, nn.BatchNorm2d)
            and isinstance(act, nn.ReLU)
            and isinstance(c2, nn.Conv2d)
            and c1.groups == 1
            and c2.groups == 1
        ):
            out[name] = m
    return out


def _fold_target(block: nn.Module) -> str | None:
    bn2 = getattr(block, "bn2", None)
    if isinstance(bn2, nn.BatchNorm2d) and bn2.track_running_stats and bn2.running_mean is not None:
        return "bn2.running_mean"
    if block.conv2.bias is not None and not isinstance(bn2, nn.BatchNorm2d):
        return "conv2.bias"
    return None


def select(block: nn.Module, cfg: SparsityConfig) -> tuple[list[int], list[int], dict[str, np.ndarray]]:
    """(dead channels, constant channels) to remove from one block, and the channel stats."""
    st = channel_stats(block.bn1)
    c = len(st["p_active"])
    dead = st["p_active"] < cfg.bn_threshold
    const = (~dead) & (st["beta"] > 0) & (st["rel_spread"] < cfg.bn_threshold)
    if _fold_target(block) is None:
        const[:] = False
    score = np.where(dead, st["p_active"], np.where(const, st["rel_spread"], np.inf)) / cfg.bn_threshold
    limit = min(math.floor(cfg.bn_max_fraction * c), c - 1)
    order = [int(i) for i in np.argsort(score, kind="stable") if np.isfinite(score[i])][:limit]
    return sorted(i for i in order if dead[i]), sorted(i for i in order if const[i]), st


def _shrink(block: nn.Module, keep: Sequence[int]) -> None:
    """Replace conv1 / bn1 / conv2 of ``block`` by modules restricted to channels ``keep``."""
    idx = torch.as_tensor(list(keep), dtype=torch.long)
    c1, c2 = block.conv1, block.conv2
    n = len(keep)

    def conv_like(src: nn.Conv2d, c_in: int, c_out: int) -> nn.Conv2d:
        conv = nn.Conv2d(
            c_in,
            c_out,
            src.kernel_size,
            src.stride,
            src.padding,
            src.dilation,
            1,
            src.bias is not None,
            src.padding_mode,
        )
        return conv.to(src.weight.device, src.weight.dtype)

    new1, new2 = conv_like(c1, c1.in_channels, n), conv_like(c2, n, c2.out_channels)
    with torch.no_grad():
        new1.weight.copy_(c1.weight[idx])
        if c1.bias is not None:
            new1.bias.copy_(c1.bias[idx])
        new2.weight.copy_(c2.weight[:, idx])
        if c2.bias is not None:
            new2.bias.copy_(c2.bias)
    block.conv1, block.conv2 = new1, new2
    b1 = block.bn1
    if isinstance(b1, nn.BatchNorm2d):
        nb = nn.BatchNorm2d(n, b1.eps, b1.momentum, b1.affine, b1.track_running_stats).to(c1.weight.device)
        with torch.no_grad():
            if b1.affine:
                nb.weight.copy_(b1.weight[idx])
                nb.bias.copy_(b1.bias[idx])
            if b1.track_running_stats:
                nb.running_mean.copy_(b1.running_mean[idx])
                nb.running_var.copy_(b1.running_var[idx])
                nb.num_batches_tracked.copy_(b1.num_batches_tracked)
        nb.train(b1.training)
        block.bn1 = nb


def _fold_constants(block: nn.Module, channels: Sequence[int], values: np.ndarray) -> np.ndarray:
    """Fold constant input channels of conv2 into bn2.running_mean / conv2.bias; returns the shift."""
    w = block.conv2.weight.detach().double()
    v = torch.as_tensor(values, dtype=torch.float64, device=w.device)
    shift = (w[:, list(channels)].sum(dim=(2, 3)) * v).sum(dim=1)
    target = _fold_target(block)
    with torch.no_grad():
        if target == "bn2.running_mean":
            block.bn2.running_mean.sub_(shift.to(block.bn2.running_mean.dtype))
        elif target == "conv2.bias":
            block.conv2.bias.add_(shift.to(block.conv2.bias.dtype))
    return shift.cpu().numpy()


def prune_filters(model: SRModel, cfg: SparsityConfig) -> tuple[SRModel, dict[str, Any]]:
    """A pruned copy of ``model`` and the structure dict (see module docstring)."""
    module = copy.deepcopy(model.module)
    blocks = prunable_blocks(module)
    pruned: dict[str, list[int]] = {}
    rows = []
    for name, block in blocks.items():
        dead, const, st = select(block, cfg)
        c = block.conv1.out_channels
        row: dict[str, Any] = dict(block=name, channels_before=c, dead=dead, constant=const)
        if const:
            shift = _fold_constants(block, const, st["mean"][const])
            row.update(folded_into=_fold_target(block), max_abs_fold=float(np.abs(shift).max()))
        removed = set(dead) | set(const)
        keep = [i for i in range(c) if i not in removed]
        if removed:
            _shrink(block, keep)
            pruned[f"{name}.conv1" if name else "conv1"] = keep
        row["channels_after"] = len(keep)
        rows.append(row)
    before = sum(p.numel() for p in model.module.parameters())
    after = sum(p.numel() for p in module.parameters())
    report = dict(
        policy="bn_filter",
        blocks_considered=len(blocks),
        blocks_pruned=len(pruned),
        channels_removed=sum(r["channels_before"] - r["channels_after"] for r in rows),
        params_before=before,
        params_after=after,
        bn_threshold=cfg.bn_threshold,
        bn_max_fraction=cfg.bn_max_fraction,
        note=APPROXIMATION_NOTE if any(r["constant"] for r in rows) else "",
        blocks=rows,
    )
    if not blocks:
        report["note"] = "no conv-BatchNorm-ReLU-conv block found (BatchNorm already folded, or no BN): nothing pruned"
    return replace(model, module=module), {"pruned_channels": pruned, "report": report}


def apply_channel_pruning(module: nn.Module, pruned_channels: Mapping[str, Sequence[int]]) -> None:
    """Shrink ``{conv1 module path: kept channel indices}`` in place (fresh module, BN folded or not)."""
    named = dict(module.named_modules())
    for conv1_name, keep in pruned_channels.items():
        parent = conv1_name.rsplit(".", 1)[0] if "." in conv1_name else ""
        block = named.get(parent)
        if block is None or getattr(block, "conv1", None) is not named.get(conv1_name) or not hasattr(block, "conv2"):
            raise BuildFolderError(
                f"pruned channel record names '{conv1_name}', which is not the conv1 of a block in this model",
                "the build folder does not match its recorded architecture; rebuild it",
            )
        keep = [int(i) for i in keep]
        c = block.conv1.out_channels
        if not keep or sorted(set(keep)) != keep or keep[0] < 0 or keep[-1] >= c:
            raise BuildFolderError(
                f"pruned channel record for '{conv1_name}' is invalid (need sorted unique indices in [0, {c}))",
                "rebuild the folder",
            )
        _shrink(block, keep)
