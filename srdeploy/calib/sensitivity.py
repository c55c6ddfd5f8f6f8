"""Per-layer quantization sensitivity, in the spirit of ONNX Runtime's ``qdq_loss_debug``.

For every quantized conv (its weight grid plus its input and output activation sites) and every quantized
residual skip, two simulations against the plan's float network (structure, masks and equalization applied):

- ``alone``: only this layer quantized -> the error it adds on its own (output PSNR, peak 1);
- ``float_gain``: everything quantized except this layer -> how much the output improves when this layer stays
  float, the number that decides which layers to keep float under a speed budget.

Both as output PSNR in dB against the float network; ``macs_share`` is the layer's share of the quantized MACs
(what keeping it float costs on an INT8 runtime).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from srdeploy.quant import sites
from srdeploy.quant.apply import apply_plan, fake_quantize_weights
from srdeploy.quant.plan import QuantPlan
from srdeploy.quant.simulate import attach_activation_quantizers
from srdeploy.quant.spec import QuantSpec


@dataclass(frozen=True)
class LayerSensitivity:
    name: str  # conv weight name, or residual module path for a skip
    kind: str  # "conv" | "skip"
    sites: tuple[str, ...]
    alone_db: float  # output PSNR vs float with only this layer quantized (higher = less sensitive)
    float_gain_db: float  # output PSNR gain of the full quantization when this layer stays float
    macs_share: float


def _groups(plan: QuantPlan, specs: Mapping[str, QuantSpec]) -> dict[str, tuple[str, tuple[str, ...]]]:
    quantized = {x.weight for x in plan.quantized_layers()}
    groups: dict[str, tuple[str, list[str]]] = {w: ("conv", []) for w in quantized}
    for name in specs:
        key, kind = sites.parse(name)
        if kind == sites.SKIP:
            groups.setdefault(key, ("skip", []))[1].append(name)
        elif key in groups:
            groups[key][1].append(name)
    return {k: (kind, tuple(sorted(v))) for k, (kind, v) in groups.items()}


def _run(net: nn.Module, images: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    with torch.no_grad():
        return [net(x).float() for x in images]


def _psnr(ref: Sequence[torch.Tensor], out: Sequence[torch.Tensor]) -> float:
    mse = float(np.mean([torch.mean((a - b) ** 2).item() for a, b in zip(ref, out, strict=True)]))
    return float("inf") if mse <= 0 else float(10 * np.log10(1.0 / mse))


def _quantized(
    base: nn.Module, plan: QuantPlan, profile: str, weights: set[str], specs: Mapping[str, QuantSpec]
) -> nn.Module:
    """A copy of the applied network with only ``weights`` on their grids and only ``specs`` fake-quantized."""
    net = copy.deepcopy(base).eval()
    only = replace(plan, weights={w: spec for w, spec in plan.weights.items() if w in weights})
    fake_quantize_weights(net, only, profile)
    attach_activation_quantizers(net, specs)
    return net


def layer_sensitivity(
    module: nn.Module, plan: QuantPlan, images: Sequence[torch.Tensor], profile: str = "trt", tier: int | None = None
) -> tuple[float, list[LayerSensitivity]]:
    """(output PSNR of the full quantization vs float, per-layer sensitivities), on LR ``images`` (1x3xHxW)."""
    specs = plan.tier(plan.default_tier if tier is None else tier).sites(profile)
    base = apply_plan(module, plan)
    ref = _run(base, images)
    groups = _groups(plan, specs)
    all_weights = {w for w, (kind, _) in groups.items() if kind == "conv"}
    full_db = _psnr(ref, _run(_quantized(base, plan, profile, all_weights, specs), images))
    macs = {x.weight: x.macs_per_lr_pixel for x in plan.quantized_layers()}
    total = sum(macs.values()) or 1.0
    out = []
    for name in sorted(groups):
        kind, own = groups[name]
        own_w = {name} if kind == "conv" else set()
        alone = _run(_quantized(base, plan, profile, own_w, {s: specs[s] for s in own}), images)
        rest_specs = {s: v for s, v in specs.items() if s not in own}
        rest = _run(_quantized(base, plan, profile, all_weights - own_w, rest_specs), images)
        out.append(
            LayerSensitivity(
                name, kind, own, _psnr(ref, alone), _psnr(ref, rest) - full_db, macs.get(name, 0.0) / total
            )
        )
    return full_db, out


def keep_float(table: Sequence[LayerSensitivity], mac_budget: float, min_gain_db: float = 0.05) -> list[str]:
    """Convs to keep float, greedily by float gain per MAC share, within ``mac_budget`` (share of quantized
    MACs). Layers whose float gain is below ``min_gain_db`` are never chosen."""
    convs = [x for x in table if x.kind == "conv" and x.float_gain_db >= min_gain_db]
    convs.sort(key=lambda x: x.float_gain_db / max(x.macs_share, 1e-6), reverse=True)
    chosen, spent = [], 0.0
    for x in convs:
        if spent + x.macs_share <= mac_budget:
            chosen.append(x.name)
            spent += x.macs_share
    return chosen


def sensitivity_table(full_db: float, table: Sequence[LayerSensitivity]) -> dict[str, object]:
    """JSON/markdown-ready rows, most sensitive first (by float gain)."""
    rows = sorted(table, key=lambda x: x.float_gain_db, reverse=True)
    return dict(
        full_quantization_psnr_db=round(full_db, 2),
        columns=["layer", "kind", "alone PSNR dB", "float gain dB", "MAC share %"],
        rows=[
            [x.name, x.kind, round(x.alone_db, 2), round(x.float_gain_db, 3), round(100 * x.macs_share, 2)]
            for x in rows
        ],
    )
