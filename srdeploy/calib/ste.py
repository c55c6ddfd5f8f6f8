"""Straight-through helper for learned discrete choices (AdaBM's bit STE); rounding STE is quant.grid.round_ste."""

from __future__ import annotations

import torch


def soft_step(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Forward the hard value, backpropagate through the soft one."""
    return soft - soft.detach() + hard.detach()
