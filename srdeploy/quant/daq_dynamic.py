"""DAQ as published, in simulation only: per image and per channel, normalise by the channel's own mean/std
and quantize on DAQ's Gaussian-optimal uniform grid (mid-rise, +-(2^(b-1)-1/2) steps; ReLU outputs:
statistics of the positive entries, levels 0..2^b-1). Not deployable on TensorRT/ONNX Runtime (needs
per-image, per-channel scales); used to measure what the static, equalized form costs."""

from __future__ import annotations

import torch
from torch import nn

from srdeploy.calib.ranges import DAQ_GAUSSIAN_STEP
from srdeploy.models.base import SRModel
from srdeploy.quant.apply import apply_plan
from srdeploy.quant.plan import QuantPlan


def daq_fake_quant(x: torch.Tensor, bits: int) -> torch.Tensor:
    step_sigma = DAQ_GAUSSIAN_STEP[bits]
    if float(x.min()) >= 0.0:  # post-ReLU: statistics over the active entries
        pos = (x > 0).float()
        count = pos.sum((2, 3), keepdim=True) + 1.0
        mean = (x * pos).sum((2, 3), keepdim=True) / count
        var = (((x - mean) * pos) ** 2).sum((2, 3), keepdim=True) / count
        step = (step_sigma * var.sqrt()).clamp_min(1e-8)
        return torch.clamp(torch.round(x / step), 0, 2**bits - 1) * step
    mean = x.mean((2, 3), keepdim=True)
    std = x.std((2, 3), keepdim=True)
    step = (step_sigma * std).clamp_min(1e-8)
    half = 2 ** (bits - 1) - 0.5
    y = (torch.round((x - mean) / step + 0.5) - 0.5).clamp(-half, half) * step
    return y + mean


def simulate_daq_dynamic(model: SRModel, plan: QuantPlan, bits: int) -> nn.Module:
    """The model with the plan's weights (as deployed, quantized) and dynamic DAQ activations on every
    quantized body conv input (per-channel dynamic statistics make the equalization irrelevant to them)."""
    sim = apply_plan(model.module, plan, quantize_weights=True)
    named = dict(sim.named_modules())
    for layer in plan.quantized_layers():
        if layer.role == "body":
            named[layer.module].register_forward_pre_hook(lambda _m, a, b=bits: (daq_fake_quant(a[0], b), *a[1:]))
    return sim
