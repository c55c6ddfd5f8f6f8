"""Filter pruning to a target: BN-statistics importance (bn_filter) or the L1-norm baseline (l1_filter).

Scope: conv1 -> [bn1] -> ReLU -> conv2 blocks (SRResNet's residual blocks). Only the block-internal channels
(conv1's filters, bn1, conv2's input columns) are pruned: the residual stream is tied through every skip
Add, so it keeps its width (pruning it would need all its producers and consumers pruned together).

* ``bn_filter`` ("Batch Normalization Tells You Which Filter is Important", data-free): bn1's output for
  an input with the running statistics is about N(beta, (|gamma| sigma / sqrt(sigma^2 + eps))^2), so a
  filter's importance is its expected post-ReLU value E[ReLU(x)] = beta Phi(beta/s) + s phi(beta/s).
  Channels are ranked globally (the scores share one scale: BN normalizes every layer) and each removed
  channel's expected value is folded into conv2's bias (ChannelPruning.constants).
* ``l1_filter`` (baseline): importance = L1 norm of each conv1 filter, the same share removed from every
  block, removed channels dropped (no fold).

Targets (filter_targets.py): sparsity.bn_ratio, bn_layer_ratios, bn_mac_budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from srdeploy.calib.layers import macs_per_lr_pixel
from srdeploy.errors import RecipeError
from srdeploy.models.base import SRModel
from srdeploy.quant.plan import ChannelPruning
from srdeploy.recipe import SparsitySection
from srdeploy.sparsity.bn_filter import channel_stats, conv_relu_conv_blocks, prunable_blocks
from srdeploy.sparsity.filter_targets import Block, allocate, pick


def l1_blocks(module: nn.Module) -> dict[str, nn.Module]:
    """Blocks L1 filter pruning applies to: conv1 -> (BatchNorm2d or nothing) bn1 -> ReLU act -> conv2."""
    return conv_relu_conv_blocks(module, (nn.BatchNorm2d, nn.Identity, type(None)))


def no_batchnorm_error(model: SRModel) -> RecipeError:
    instead = (["l1_filter (filter pruning by weight magnitude)"] if l1_blocks(model.module) else []) + [
        "uniform or sls (N:M sparsity)"
    ]
    return RecipeError(
        f"sparsity.policy bn_filter needs conv-BatchNorm-ReLU-conv blocks; {model.name or model.arch} has none "
        "(no BatchNorm, or BatchNorm already folded)",
        f"use sparsity.policy {' or '.join(instead)} instead",
    )


def _prefix(name: str) -> str:
    return f"{name}." if name else ""


def body_macs(model: SRModel) -> tuple[float, dict[str, float]]:
    """Dense body MACs per LR pixel (the budget's reference) and every conv's MACs per LR pixel."""
    macs = macs_per_lr_pixel(model.module)
    roles = model.layer_roles()
    return sum(v for k, v in macs.items() if roles.get(k, "body") == "body"), macs


def _blocks(model: SRModel, policy: str) -> tuple[list[Block], dict[str, Any], dict[str, np.ndarray]]:
    found = prunable_blocks(model.module) if policy == "bn_filter" else l1_blocks(model.module)
    if not found:
        if policy == "bn_filter":
            raise no_batchnorm_error(model)
        raise RecipeError(
            "sparsity.policy l1_filter found no conv-ReLU-conv block to prune in this model",
            "use sparsity.policy uniform or sls (N:M sparsity) instead",
        )
    _, macs = body_macs(model)
    blocks, means = [], {}
    for name, m in found.items():
        p = _prefix(name)
        per = macs[f"{p}conv1.weight"] / m.conv1.out_channels + macs[f"{p}conv2.weight"] / m.conv2.in_channels
        if policy == "bn_filter":
            st = channel_stats(m.bn1)
            score, means[name] = st["mean"], st["mean"]
        else:
            score = np.abs(m.conv1.weight.detach().double().cpu().numpy()).sum(axis=(1, 2, 3))
        blocks.append(Block(name, np.asarray(score, np.float64), float(per)))
    return blocks, found, means


def prune_to_target(model: SRModel, cfg: SparsitySection) -> tuple[tuple[ChannelPruning, ...], dict[str, Any]]:
    """Plan entries removing the least important filters of every block to the recipe's target, decided on
    ``model`` as loaded (BatchNorm not folded), and a report."""
    blocks, _, means = _blocks(model, cfg.policy)
    dense_body, _ = body_macs(model)
    counts = allocate(blocks, cfg, dense_body, uniform=cfg.policy == "l1_filter")
    groups, rows = [], []
    for b in blocks:
        removed = pick(b, counts[b.name])
        rows.append(dict(block=b.name, channels_before=b.channels, channels_after=b.channels - len(removed)))
        rows[-1]["removed"] = removed
        if not removed:
            continue
        p = _prefix(b.name)
        constants = np.asarray(means[b.name][removed], np.float32) if b.name in means else None
        keep = tuple(i for i in range(b.channels) if i not in set(removed))
        groups.append(ChannelPruning((f"{p}conv1.weight",), (f"{p}conv2.weight",), keep, b.channels, constants))
    total = sum(b.channels for b in blocks)
    removed_n = sum(r["channels_before"] - r["channels_after"] for r in rows)
    lost = [r["channels_before"] - r["channels_after"] for r in rows]
    macs_removed = sum(n * b.macs_per_channel for n, b in zip(lost, blocks, strict=True))
    report = dict(
        policy=cfg.policy,
        importance="expected post-ReLU value from BN gamma, beta, running_var"
        if cfg.policy == "bn_filter"
        else "L1 norm of conv1 filters",
        allocation="uniform" if cfg.policy == "l1_filter" else "global",
        target={k: v for k, v in cfg.model_dump(include={"bn_ratio", "bn_layer_ratios", "bn_mac_budget"}).items() if v},
        blocks_considered=len(blocks),
        blocks_pruned=len(groups),
        channels_prunable=total,
        channels_removed=removed_n,
        ratio_removed=removed_n / total,
        body_macs_kept_fraction=1.0 - macs_removed / dense_body,
        blocks=rows,
    )
    return tuple(groups), report
