"""apply_plan: the one way a plan (or a part of it) is applied to a PyTorch module.

Calibration observes ``apply_plan(module, plan)`` (the float network as it will be deployed), the simulation
runs it with ``quantize_weights=True`` plus activation fake quantization, refinement starts its student
from it, sparsity measures it, and QDQ emission takes its float weights (:func:`deployed_weights`). Order:
structure (removed channels) -> masks (N:M, re-fitted weights and biases) -> equalization (channel scales)
-> weight fake quantization. The input module is never modified.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from srdeploy.errors import PlanError
from srdeploy.quant.plan import ChannelGroup, ChannelPruning, NMMask, QuantPlan


def apply_plan(
    module: nn.Module,
    plan: QuantPlan,
    *,
    structure: bool = True,
    masks: bool = True,
    equalization: bool = True,
    quantize_weights: bool = False,
    profile: str | None = None,
) -> nn.Module:
    """A copy of ``module`` (eval mode) with the chosen parts of ``plan`` applied; ``profile``: whose weight
    grids ``quantize_weights`` uses (a profile may narrow them, profiles/base.py)."""
    out = copy.deepcopy(module).eval()
    if structure:
        for group in plan.structure:
            prune_channels(out, group)
    if masks:
        apply_masks(out, plan.masks)
    if equalization:
        for eq in plan.equalization:
            equalize_channels(out, eq)
    if quantize_weights:
        fake_quantize_weights(out, plan, profile)
    return out


def _convs(module: nn.Module) -> dict[str, nn.Conv2d]:
    return {f"{n}.weight": m for n, m in module.named_modules() if isinstance(m, nn.Conv2d)}


def _conv(convs: Mapping[str, nn.Conv2d], weight: str) -> nn.Conv2d:
    conv = convs.get(weight)
    if conv is None:
        raise PlanError(f"the plan names conv '{weight}', which is not in the model", "the plan is for another model")
    return conv


def apply_masks(module: nn.Module, masks: Mapping[str, NMMask]) -> None:
    convs = _convs(module)
    with torch.no_grad():
        for weight in sorted(masks):
            mask, conv = masks[weight], _conv(convs, weight)
            if tuple(mask.keep.shape) != tuple(conv.weight.shape):
                raise PlanError(
                    f"mask for {weight} has shape {tuple(mask.keep.shape)}, weight {tuple(conv.weight.shape)}",
                    "the plan does not match this model",
                )
            conv.weight.copy_(torch.from_numpy(mask.pruned(conv.weight.detach().cpu().numpy())))
            if mask.bias is not None and conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(np.asarray(mask.bias, dtype=np.float32)))


def equalize_channels(module: nn.Module, group: ChannelGroup) -> None:
    convs = _convs(module)
    t = torch.from_numpy(np.asarray(group.scale, dtype=np.float32))
    with torch.no_grad():
        for w in group.producers:
            conv = _conv(convs, w)
            conv.weight.div_(t.view(-1, 1, 1, 1))
            if conv.bias is not None:
                conv.bias.div_(t)
        for w in group.consumers:
            _conv(convs, w).weight.mul_(t.view(1, -1, 1, 1))


def _smaller_conv(src: nn.Conv2d, c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(
        c_in, c_out, src.kernel_size, src.stride, src.padding, src.dilation, 1, src.bias is not None, src.padding_mode
    )
    return conv.to(src.weight.device, src.weight.dtype)


def _replace(module: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, attr = path.rpartition(".")
    parent = module.get_submodule(parent_path) if parent_path else module
    setattr(parent, attr, new)


def _consumer(
    group: ChannelPruning, w: str, weight: torch.Tensor, bias: torch.Tensor | None, idx: torch.Tensor, constants: Any
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A consumer's weight sliced to the kept input channels (removed constants folded into its bias), or the
    plan's re-fitted weight and bias."""
    if group.consumer_weight is not None:
        fitted = torch.from_numpy(np.asarray(group.consumer_weight, np.float32))
        if tuple(fitted.shape) != (weight.shape[0], len(idx), *weight.shape[2:]):
            raise PlanError(
                f"re-fitted weight of {w} has shape {tuple(fitted.shape)}, the pruned conv needs "
                f"{(weight.shape[0], len(idx), *weight.shape[2:])}",
                "the plan does not match this model",
            )
        if group.consumer_bias is not None:
            if bias is None or bias.shape[0] != len(group.consumer_bias):
                raise PlanError(f"re-fitted bias of {w} does not fit the conv", "the plan does not match this model")
            bias = torch.from_numpy(np.asarray(group.consumer_bias, np.float32))
        return fitted, bias
    removed = list(group.removed)
    if constants is not None and removed:
        if bias is None:
            raise PlanError(f"cannot fold constant channels into {w}: it has no bias", "rebuild the plan")
        bias = bias + (weight[:, removed].sum(dim=(2, 3)) * constants).sum(dim=1)
    return weight[:, idx], bias


def prune_channels(module: nn.Module, group: ChannelPruning) -> None:
    """Channel surgery: smaller dense convs (and per-channel parameters) for one group. A conv may be both a
    consumer and a producer of the same group (e.g. EDSR's body conv on the residual stream)."""
    convs = _convs(module)
    idx = torch.as_tensor(list(group.keep), dtype=torch.long)
    constants = None if group.constants is None else torch.from_numpy(np.asarray(group.constants, np.float32))
    with torch.no_grad():
        for w in sorted(set(group.producers) | set(group.consumers)):
            conv = _conv(convs, w)
            weight = conv.weight.detach()
            bias = None if conv.bias is None else conv.bias.detach().clone()
            if w in group.consumers:
                weight, bias = _consumer(group, w, weight, bias, idx, constants)
            if w in group.producers:
                weight = weight[idx]
                bias = None if bias is None else bias[idx]
            new = _smaller_conv(conv, weight.shape[1], weight.shape[0])
            new.weight.copy_(weight)
            if bias is not None:
                new.bias.copy_(bias)
            _replace(module, w.removesuffix(".weight"), new)
        params = dict(module.named_parameters())
        for name in group.per_channel:
            p = params[name]
            p.data = p.data[idx].clone()


def fake_quantize_weights(module: nn.Module, plan: QuantPlan, profile: str | None = None) -> None:
    from srdeploy.profiles import get_profile

    narrow = get_profile(profile).weight_spec if profile else (lambda s: s)
    convs = _convs(module)
    with torch.no_grad():
        for layer in plan.quantized_layers():
            spec = plan.weights.get(layer.weight)
            if spec is not None:
                spec = narrow(spec)
                w = _conv(convs, layer.weight).weight
                w.copy_(spec.fake_quant_torch(w))


def deployed_weights(module: nn.Module, plan: QuantPlan) -> dict[str, np.ndarray]:
    """Float parameters of the deployed network (structure, masks and equalization applied), by name."""
    deployed = apply_plan(module, plan)
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in deployed.state_dict().items()}


def with_masks(module: nn.Module, masks: Mapping[str, NMMask]) -> nn.Module:
    """``apply_plan`` of a plan holding only ``masks`` (sparsity measurements before the plan is assembled)."""
    from srdeploy.quant.plan import ModelRef

    return apply_plan(module, QuantPlan(model=ModelRef("", "", 1), layers=(), masks=dict(masks)))
