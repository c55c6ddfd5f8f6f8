"""Simulation: the PyTorch model with a plan applied as fake quantization and N:M masks.

This is the ground truth the ONNX rewrites must reproduce (to rounding) for a given profile
and precision tier.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn

from srdeploy.errors import PlanError
from srdeploy.models.base import SRModel
from srdeploy.quant import sites
from srdeploy.quant.plan import QuantPlan
from srdeploy.quant.spec import QuantSpec


def apply_weights(module: nn.Module, plan: QuantPlan, quantize: bool = True) -> None:
    """Replace conv weights in place by their masked, fake-quantized values."""
    named = dict(module.named_modules())
    with torch.no_grad():
        for layer in plan.layers:
            conv = named.get(layer.module)
            if conv is None:
                raise PlanError(f"plan layer '{layer.module}' is not in the model", "rebuild the plan for this model")
            w = conv.weight
            if layer.weight in plan.masks:
                mask = plan.masks[layer.weight]
                if mask.keep.shape != tuple(w.shape):
                    raise PlanError(
                        f"mask for {layer.weight} has shape {tuple(mask.keep.shape)}, weight {tuple(w.shape)}",
                        "the plan does not match this model",
                    )
                w.copy_(torch.from_numpy(mask.pruned(w.detach().cpu().numpy())))
                if mask.bias is not None and conv.bias is not None:
                    conv.bias.copy_(torch.from_numpy(mask.bias))
            if quantize and layer.quantized and layer.weight in plan.weights:
                w.copy_(plan.weights[layer.weight].fake_quant_torch(w))


def attach_activation_quantizers(module: nn.Module, specs: Mapping[str, QuantSpec]) -> list:
    """Register hooks that fake-quantize each site; returns the hook handles."""
    named = dict(module.named_modules())
    handles = []
    for site_name in sorted(specs):
        spec = specs[site_name]
        key, kind = sites.parse(site_name)
        target = named.get(key if kind == sites.SKIP else sites.module_of(key))
        if target is None:
            raise PlanError(f"site '{site_name}' names no module of the model", "the plan was made for another model")
        if kind == sites.INPUT:
            handles.append(target.register_forward_pre_hook(lambda _m, a, q=spec: (q.fake_quant_torch(a[0]), *a[1:])))
        elif kind == sites.OUTPUT:
            handles.append(target.register_forward_hook(lambda _m, _a, out, q=spec: q.fake_quant_torch(out)))
        else:
            handles.append(target.register_forward_pre_hook(lambda _m, a, q=spec: (a[0], q.fake_quant_torch(a[1]))))
    return handles


def simulate(
    model: SRModel | nn.Module,
    plan: QuantPlan,
    profile: str = "trt",
    tier: int | None = None,
    weights: bool = True,
    activations: bool = True,
) -> nn.Module:
    """A copy of the model that computes what the deployed ``profile`` graph of ``tier`` computes."""
    module = model.module if isinstance(model, SRModel) else model
    sim = copy.deepcopy(module).eval()
    apply_weights(sim, plan, quantize=weights)
    if activations:
        t = plan.tier(plan.default_tier if tier is None else tier)
        attach_activation_quantizers(sim, t.sites(profile))
    return sim
