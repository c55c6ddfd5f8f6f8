"""Data-free BN-based filter pruning for conv-BN-ReLU-conv blocks.

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

``prune_filters`` returns the plan's ChannelPruning entries (kept channels, and the constants folded into
conv2's bias, which exists in the deploy form: BatchNorm folding gives every conv a bias) and a report;
``quant.apply.apply_plan`` does the surgery, so the model and fp32.onnx stay as trained.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from torch import nn

from srdeploy.models.base import SRModel
from srdeploy.quant.plan import ChannelPruning
from srdeploy.recipe import SparsitySection

APPROXIMATION_NOTE = (
    "constant channels are folded as their expected post-ReLU value; conv2 zero-pads, so the fold is "
    "exact only away from a 1-pixel border of each feature map"
)


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.vectorize(math.erfc, otypes=[float])(-x / math.sqrt(2.0))  # erfc: accurate far in the lower tail


def _norm_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def channel_stats(bn: nn.BatchNorm2d) -> dict[str, np.ndarray]:
    """P(active), post-ReLU mean and relative spread s/median(s) of each channel, from γ, β and the running
    variance σ² (s = |γ| σ / sqrt(σ² + ε): the std of BN's output when its input has the running statistics)."""
    gamma = np.abs(bn.weight.detach().double().cpu().numpy()) if bn.affine else np.ones(bn.num_features)
    if bn.track_running_stats and bn.running_var is not None:  # std of BN's output on the running statistics
        var = bn.running_var.detach().double().cpu().numpy()
        gamma = gamma * np.sqrt(np.maximum(var, 0.0) / (np.maximum(var, 0.0) + bn.eps))
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


def conv_relu_conv_blocks(module: nn.Module, bn1_types: tuple[type, ...] = (nn.BatchNorm2d,)) -> dict[str, nn.Module]:
    """Block path -> block, for blocks conv1 -> bn1 (one of ``bn1_types``) -> ReLU act -> conv2, ungrouped."""
    out = {}
    for name, m in module.named_modules():
        c1, b1, act, c2 = (getattr(m, a, None) for a in ("conv1", "bn1", "act", "conv2"))
        if (
            isinstance(c1, nn.Conv2d)
            and isinstance(b1, bn1_types)
            and isinstance(act, nn.ReLU)
            and isinstance(c2, nn.Conv2d)
            and c1.groups == c2.groups == 1
        ):
            out[name] = m
    return out


def prunable_blocks(module: nn.Module) -> dict[str, nn.Module]:
    """Blocks BN filter pruning applies to: conv1 -> BatchNorm2d bn1 -> ReLU act -> conv2."""
    return conv_relu_conv_blocks(module)


def _fold_target(block: nn.Module) -> str | None:
    bn2 = getattr(block, "bn2", None)
    if isinstance(bn2, nn.BatchNorm2d) and bn2.track_running_stats and bn2.running_mean is not None:
        return "bn2.running_mean"
    if block.conv2.bias is not None and not isinstance(bn2, nn.BatchNorm2d):
        return "conv2.bias"
    return None


def select(block: nn.Module, cfg: SparsitySection) -> tuple[list[int], list[int], dict[str, np.ndarray]]:
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


def block_pruning(name: str, block: nn.Module, cfg: SparsitySection) -> tuple[ChannelPruning | None, dict[str, Any]]:
    """The plan entry removing one block's dead and constant channels (None when none), and its report row."""
    dead, const, st = select(block, cfg)
    c = block.conv1.out_channels
    removed = sorted(set(dead) | set(const))
    row: dict[str, Any] = dict(block=name, channels_before=c, dead=dead, constant=const)
    row["channels_after"] = c - len(removed)
    if not removed:
        return None, row
    prefix = f"{name}." if name else ""
    group = ChannelPruning(
        producers=(f"{prefix}conv1.weight",),
        consumers=(f"{prefix}conv2.weight",),
        keep=tuple(i for i in range(c) if i not in set(removed)),
        channels=c,
        # constant channels carry their expected post-ReLU value; dead ones ~0 (the same formula)
        constants=np.asarray(st["mean"][removed], dtype=np.float32),
    )
    return group, row


def prune_filters(model: SRModel, cfg: SparsitySection) -> tuple[tuple[ChannelPruning, ...], dict[str, Any]]:
    """Plan entries for ``model`` as loaded (BatchNorm not folded: its statistics decide), and a report: to
    the recipe's target (bn_ratio / bn_layer_ratios / bn_mac_budget, sparsity/filter_prune.py) when one is
    set, else only dead and constant channels. apply_plan performs the channel surgery on the deploy-form
    network. A model without such blocks is refused (RecipeError naming the policies that apply)."""
    from srdeploy.sparsity.filter_prune import no_batchnorm_error, prune_to_target

    blocks = prunable_blocks(model.module)
    if not blocks:
        raise no_batchnorm_error(model)
    if cfg.has_filter_target:
        return prune_to_target(model, cfg)
    groups, rows = [], []
    for name, block in blocks.items():
        group, row = block_pruning(name, block, cfg)
        rows.append(row)
        if group is not None:
            groups.append(group)
    report = dict(
        policy="bn_filter",
        blocks_considered=len(blocks),
        blocks_pruned=len(groups),
        channels_removed=sum(r["channels_before"] - r["channels_after"] for r in rows),
        bn_threshold=cfg.bn_threshold,
        bn_max_fraction=cfg.bn_max_fraction,
        note=APPROXIMATION_NOTE if any(r["constant"] for r in rows) else "",
        blocks=rows,
    )
    return tuple(groups), report
