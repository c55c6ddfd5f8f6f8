"""Helpers shared by the sparsity policies: which convs may be pruned, forward passes, masks."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from srdeploy.models.base import SRModel
from srdeploy.quant.plan import LayerInfo, NMMask
from srdeploy.sparsity.nm import nm_mask

DENSE = (1, 1)  # the 'keep everything' option of a layer
SENSITIVITY_BATCH = 8  # forward-pass batch of sensitivity and re-fit runs
Pattern = tuple[int, int]


def conv_order(module: nn.Module) -> list[str]:
    """Weight names of all convs in module order (usable as ``layer_infos`` order before export)."""
    return [f"{name}.weight" for name, m in module.named_modules() if isinstance(m, nn.Conv2d)]


def channels_per_group(layer: LayerInfo) -> int:
    """C of the weight [K, C, R, S]: the dimension N:M groups run along."""
    return layer.in_channels // max(layer.groups, 1)


def skip_reason(layer: LayerInfo, roles: Iterable[str], m: int | Iterable[int]) -> str | None:
    """Why ``layer`` cannot take an N:M mask with this M (any of these Ms), or None if it can."""
    roles = tuple(roles)
    if layer.role == "fixed":
        return "fixed mean-shift conv: never pruned"
    if layer.role not in roles:
        return f"role '{layer.role}' not in sparsity.include_roles {list(roles)}"
    ms = (m,) if isinstance(m, int) else tuple(m)
    c = channels_per_group(layer)
    if all(c % mm for mm in ms):
        return f"input channels per group C={c} not a multiple of M={'/'.join(map(str, ms))}"
    return None


def split_layers(
    layers: Iterable[LayerInfo], roles: Iterable[str], m: int | Iterable[int]
) -> tuple[list[LayerInfo], dict[str, str]]:
    eligible, skipped = [], {}
    for x in layers:
        reason = skip_reason(x, roles, m)
        if reason is None:
            eligible.append(x)
        else:
            skipped[x.weight] = reason
    return eligible, skipped


def budget_layers(layers: Iterable[LayerInfo], roles: Iterable[str]) -> list[LayerInfo]:
    """Layers whose MACs the budget is a fraction of: every conv of an included role (eligible or not)."""
    roles = tuple(roles)
    return [x for x in layers if x.role in roles]


def module_device(module: nn.Module) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def pick_patches(patches: np.ndarray, count: int, seed: int) -> np.ndarray:
    """A seeded subset of ``count`` patches (all of them when there are fewer)."""
    if len(patches) <= count:
        return np.asarray(patches, dtype=np.float32)
    idx = np.sort(np.random.default_rng(seed).choice(len(patches), size=count, replace=False))
    return np.asarray(patches[idx], dtype=np.float32)


@torch.no_grad()
def run(module: nn.Module, patches: np.ndarray, batch_size: int = 8) -> torch.Tensor:
    """Outputs of ``module`` on ``patches`` (N, 3, H, W), concatenated on the CPU."""
    module.eval()
    dev = module_device(module)
    outs = []
    for i in range(0, len(patches), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(patches[i : i + batch_size])).to(dev)
        outs.append(module(x).float().cpu())
    return torch.cat(outs)


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.mean((a.double() - b.double()) ** 2))


def psnr_db(mse_value: float, peak: float = 1.0) -> float | None:
    """PSNR in dB for reports; None when the outputs are identical (JSON has no infinity)."""
    return None if mse_value <= 0 else 10.0 * math.log10(peak * peak / mse_value)


def pattern(mask: NMMask | None) -> str:
    return "dense" if mask is None or mask.n == mask.m else f"{mask.n}:{mask.m}"


def layer_row(x: LayerInfo, mask: NMMask | None, reason: str = "") -> dict:
    """The per-layer report entry every policy produces."""
    density = 1.0 if mask is None else float(np.asarray(mask.keep).mean())
    return dict(
        weight=x.weight,
        role=x.role,
        shape=[x.out_channels, channels_per_group(x), *x.kernel],
        pattern=pattern(mask),
        density=round(density, 6),
        macs_before=x.macs_per_lr_pixel,
        macs_after=x.macs_per_lr_pixel * density,
        reason=reason,
    )


def sensitivities(
    model: SRModel,
    eligible: Sequence[LayerInfo],
    options: dict[str, list[Pattern]],
    patches: np.ndarray,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, dict[Pattern, float]], torch.Tensor]:
    """Output MSE vs dense when only one conv is pruned at one pattern; and the dense output."""
    module = copy.deepcopy(model.module).eval()
    dense = run(module, patches, batch_size)
    params = dict(module.named_parameters())
    out: dict[str, dict[Pattern, float]] = {}
    done = 0
    for x in eligible:
        w = params[x.weight]
        orig = w.detach().clone()
        table: dict[Pattern, float] = {}
        for n, m in options[x.weight]:
            if (n, m) == DENSE:
                table[DENSE] = 0.0
                continue
            keep = torch.from_numpy(nm_mask(orig.cpu().numpy(), n, m)).to(orig.device)
            with torch.no_grad():
                w.copy_(orig * keep)
            table[(n, m)] = mse(run(module, patches, batch_size), dense)
            done += 1
            if progress:
                progress(done)
        with torch.no_grad():
            w.copy_(orig)
        out[x.weight] = table
    return out, dense
