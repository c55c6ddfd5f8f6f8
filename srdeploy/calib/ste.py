"""Differentiable fake quantization for refinement: straight-through rounding, learnable clip
bounds, and (possibly fractional, per-sample) bit-widths, on srdeploy's trt grids."""

from __future__ import annotations

import torch


def round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def soft_step(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Forward the hard value, backpropagate through the soft one (AdaBM's bit STE)."""
    return soft - soft.detach() + hard.detach()


def fq_unsigned(x: torch.Tensor, hi: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """q in [0, 2^b - 1], zero point 0, scale = hi / (2^b - 1). ``bits`` broadcasts against x."""
    levels = torch.pow(2.0, bits) - 1.0
    scale = hi.abs().clamp_min(1e-8) / levels
    q = torch.minimum(torch.clamp(round_ste(x / scale), min=0.0), levels)
    return q * scale


def fq_signed(x: torch.Tensor, absmax: torch.Tensor, bits: torch.Tensor, narrow: bool = False) -> torch.Tensor:
    """q in [-2^(b-1) (+1 if narrow), 2^(b-1) - 1], scale = absmax / (2^(b-1) - 1)."""
    top = torch.pow(2.0, bits - 1.0) - 1.0
    bottom = -top if narrow else -top - 1.0
    scale = absmax.abs().clamp_min(1e-8) / top
    q = torch.minimum(torch.maximum(round_ste(x / scale), bottom), top)
    return q * scale
