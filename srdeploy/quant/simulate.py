"""Simulation: the PyTorch model with a plan applied (apply_plan) plus activation fake quantization.

This is the ground truth the emitted graphs must reproduce (to rounding) for a given profile and tier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from srdeploy.errors import PlanError
from srdeploy.models.base import SRModel
from srdeploy.quant import sites
from srdeploy.quant.apply import apply_plan
from srdeploy.quant.plan import QuantPlan
from srdeploy.quant.spec import QuantSpec


def attach_site(named: Mapping[str, nn.Module], site_name: str, fn: Callable[[Tensor], Tensor]) -> RemovableHandle:
    """Hook ``fn`` onto the tensor a site names: a conv's input or output, or a residual add's skip operand."""
    key, kind = sites.parse(site_name)
    target = named.get(key if kind == sites.SKIP else sites.module_of(key))
    if target is None:
        raise PlanError(f"site '{site_name}' names no module of the model", "the plan was made for another model")
    if kind == sites.INPUT:
        return target.register_forward_pre_hook(lambda _m, a: (fn(a[0]), *a[1:]))
    if kind == sites.OUTPUT:
        return target.register_forward_hook(lambda _m, _a, out: fn(out))
    return target.register_forward_pre_hook(lambda _m, a: (a[0], fn(a[1])))


def attach_activation_quantizers(
    module: nn.Module, specs: Mapping[str, QuantSpec], ste: bool = False
) -> list[RemovableHandle]:
    """Register hooks that fake-quantize each site; returns the hook handles. ``ste``: straight-through
    rounding, so that gradients cross these sites (training through fixed quantizers)."""
    named = dict(module.named_modules())
    return [attach_site(named, name, lambda x, q=specs[name]: q.fake_quant_torch(x, ste)) for name in sorted(specs)]


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
    t = plan.tier(plan.default_tier if tier is None else tier)
    sim = apply_plan(module, plan, quantize_weights=weights and t.quantized, profile=profile)
    if activations and t.quantized:
        attach_activation_quantizers(sim, t.sites(profile))
    return sim
