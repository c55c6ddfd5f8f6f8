"""Per-conv facts for the plan: role, precision decision and why, shape, MACs per LR pixel."""

from __future__ import annotations

import torch
from torch import nn

from srdeploy.models.base import SRModel
from srdeploy.quant.plan import LayerInfo

REASONS = {
    "body": "body conv: quantized",
    "fixed": "fixed mean-shift conv: never quantized",
    "float": "{role} kept in float (add '{role}' to quant.quantize_roles to run it at 8 bit)",
    "8bit": "{role} quantized at 8 bit (listed in quant.quantize_roles)",
}


def macs_per_lr_pixel(module: nn.Module, size: int = 16) -> dict[str, float]:
    """MACs of each conv per input (LR) pixel, measured with hooks on a size x size input."""
    out: dict[str, float] = {}
    handles = []
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d):

            def hook(mod: nn.Conv2d, _a: object, y: torch.Tensor, name: str = name) -> None:
                k = mod.kernel_size[0] * mod.kernel_size[1]
                macs = y.shape[2] * y.shape[3] * mod.out_channels * (mod.in_channels // mod.groups) * k
                out[f"{name}.weight"] = macs / (size * size)

            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module(torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    return out


def layer_infos(model: SRModel, order: list[str], quantize_roles: tuple[str, ...] = ("body",)) -> tuple[LayerInfo, ...]:
    """LayerInfo for each conv weight in ``order`` (the graph's order)."""
    roles = model.layer_roles()
    macs = macs_per_lr_pixel(model.module)
    named = dict(model.module.named_modules())
    infos = []
    for weight in order:
        module_name = weight.rsplit(".", 1)[0]
        conv = named[module_name]
        assert isinstance(conv, nn.Conv2d)
        role = roles.get(weight, "body")
        if role == "body":
            quantized, reason = True, REASONS["body"]
        elif role == "fixed":
            quantized, reason = False, REASONS["fixed"]
        elif role in quantize_roles:
            quantized, reason = True, REASONS["8bit"].format(role=role)
        else:
            quantized, reason = False, REASONS["float"].format(role=role)
        infos.append(
            LayerInfo(
                weight=weight,
                module=module_name,
                role=role,
                quantized=quantized,
                reason=reason,
                in_channels=conv.in_channels,
                out_channels=conv.out_channels,
                kernel=(int(conv.kernel_size[0]), int(conv.kernel_size[1])),
                groups=conv.groups,
                macs_per_lr_pixel=float(macs.get(weight, 0.0)),
            )
        )
    return tuple(infos)
