"""How many filters each block loses: a global ratio, fixed per-block ratios, or a MAC budget.

Inputs are plain numbers (per block: channels, an importance score per channel, MACs per LR pixel that
one channel costs), so the allocation is testable without a network. ``global`` ranks every channel of
every block by its score (BN pruning: scores are comparable across blocks); ``uniform`` removes the same
share from every block (the L1-norm baseline). A block keeps at least one channel and loses at most
``sparsity.bn_max_fraction`` of them; a target that cannot be met is refused with the largest (ratio) or
smallest (budget) valid value, in one line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from srdeploy.errors import RecipeError
from srdeploy.recipe import SparsitySection


@dataclass(frozen=True)
class Block:
    name: str
    score: np.ndarray  # importance per channel (low: pruned first)
    macs_per_channel: float  # MACs per LR pixel removed with one channel (producer row + consumer column)

    @property
    def channels(self) -> int:
        return len(self.score)


def cap(block: Block, cfg: SparsitySection) -> int:
    """The most channels a block may lose: bn_max_fraction of it, and never all."""
    return max(min(math.floor(cfg.bn_max_fraction * block.channels + 1e-9), block.channels - 1), 0)


def _floor3(x: float) -> float:
    return math.floor(x * 1000 + 1e-9) / 1000


def _limit_hint(cfg: SparsitySection) -> str:
    return f"each block keeps at least one channel and loses at most sparsity.bn_max_fraction = {cfg.bn_max_fraction}"


def _fixed(blocks: Sequence[Block], cfg: SparsitySection) -> dict[str, int]:
    by_name = {b.name: b for b in blocks}
    out = {}
    for name, ratio in sorted(cfg.bn_layer_ratios.items()):
        block = by_name.get(name)
        if block is None:
            shown = ", ".join(list(by_name)[:4]) + (", ..." if len(by_name) > 4 else "")
            raise RecipeError(f"sparsity.bn_layer_ratios names {name!r}, not a prunable block", f"blocks: {shown}")
        n = round(ratio * block.channels)
        if n > cap(block, cfg):
            raise RecipeError(
                f"sparsity.bn_layer_ratios[{name}] = {ratio} removes {n} of {block.channels} channels; the largest "
                f"valid ratio is {_floor3(cap(block, cfg) / block.channels)}",
                _limit_hint(cfg),
            )
        out[name] = n
    return out


def _take(free: Sequence[Block], cfg: SparsitySection, enough: object, uniform: bool) -> dict[str, int] | None:
    """Counts for the free blocks: channels in score order (global) or one count for all (uniform) until
    ``enough(counts)`` holds; None when the caps stop it first."""
    counts = {b.name: 0 for b in free}
    if enough(counts):  # type: ignore[operator]
        return counts
    if uniform:
        for n in range(1, max((cap(b, cfg) for b in free), default=0) + 1):
            counts = {b.name: min(n, cap(b, cfg)) for b in free}
            if enough(counts):  # type: ignore[operator]
                return counts
        return None
    order = sorted((float(s), i, c) for i, b in enumerate(free) for c, s in enumerate(b.score))
    for _, i, _ in order:
        b = free[i]
        if counts[b.name] < cap(b, cfg):
            counts[b.name] += 1
            if enough(counts):  # type: ignore[operator]
                return counts
    return None


def allocate(blocks: Sequence[Block], cfg: SparsitySection, dense_macs: float, uniform: bool) -> dict[str, int]:
    """Channels removed per block for the recipe's target (bn_layer_ratios fixed first, then bn_ratio or
    bn_mac_budget over the other blocks). ``dense_macs``: the body MACs per LR pixel the budget refers to."""
    fixed = _fixed(blocks, cfg)
    free = [b for b in blocks if b.name not in fixed]
    macs = {b.name: b.macs_per_channel for b in blocks}
    if cfg.bn_ratio is not None:
        total = sum(b.channels for b in free)
        want = round(cfg.bn_ratio * total) if not uniform else None
        per = {b.name: round(cfg.bn_ratio * b.channels) for b in free}
        if uniform:
            counts = per if all(per[b.name] <= cap(b, cfg) for b in free) else None
            largest = min((cap(b, cfg) / b.channels for b in free), default=0.0)
        else:
            counts = _take(free, cfg, lambda c: sum(c.values()) >= want, uniform=False)
            largest = sum(cap(b, cfg) for b in free) / max(total, 1)
        if counts is None:
            raise RecipeError(
                f"sparsity.bn_ratio = {cfg.bn_ratio} cannot be met; the largest valid ratio is {_floor3(largest)}",
                _limit_hint(cfg),
            )
    elif cfg.bn_mac_budget is not None:
        goal = cfg.bn_mac_budget * dense_macs

        def kept(c: Mapping[str, int]) -> float:
            return dense_macs - sum(n * macs[k] for k, n in {**fixed, **c}.items())

        counts = _take(free, cfg, lambda c: kept(c) <= goal + 1e-6 * dense_macs, uniform)
        if counts is None:
            floor = kept({b.name: cap(b, cfg) for b in free}) / dense_macs
            raise RecipeError(
                f"sparsity.bn_mac_budget = {cfg.bn_mac_budget} cannot be met; the smallest valid budget is "
                f"{math.ceil(floor * 1000 - 1e-9) / 1000}",
                _limit_hint(cfg),
            )
    else:
        counts = {b.name: 0 for b in free}
    return {**fixed, **counts}


def pick(block: Block, count: int) -> list[int]:
    """The ``count`` least important channels of a block (ties: lower index first), sorted."""
    return sorted(int(i) for i in np.argsort(block.score, kind="stable")[:count])
