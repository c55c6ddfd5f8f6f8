"""Label-free bias correction after N:M masking.

For each masked conv (with a bias), in network order and with upstream corrections already in
effect: on the same input x (the masked network's activation), the per-output-channel mean of
conv_dense(x) - conv_masked(x) over calibration patches is added to the conv's bias, so the mean
output of every masked layer matches its dense version. One forward pass over the fitting
patches (hooks correct each layer's output before the next layer sees it).

The corrections are *accepted* only when they lower the whole network's output MSE against the
dense network on held-out calibration patches (disjoint from the fitting patches when there are
enough); the report records both numbers either way. Accepted biases are returned inside the masks
(NMMask.bias, fit "bias_correction"): the plan carries them, the model keeps its trained biases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from srdeploy.quant.apply import with_masks
from srdeploy.quant.plan import NMMask
from srdeploy.sparsity.common import module_device, mse, psnr_db, run


@torch.no_grad()
def fit_biases(module: nn.Module, masks: Mapping[str, NMMask], patches: np.ndarray) -> dict[str, np.ndarray]:
    """Corrected bias values (conv weight name -> array) of every masked conv that has a bias."""
    sim = with_masks(module, masks)
    dense = {n: p.detach().clone() for n, p in module.named_parameters() if n in masks}
    deltas: dict[str, torch.Tensor] = {}
    handles = []
    for name, conv in sim.named_modules():
        wname = f"{name}.weight"
        if not isinstance(conv, nn.Conv2d) or wname not in masks or conv.bias is None:
            continue

        def hook(mod: nn.Conv2d, args: tuple, out: torch.Tensor, wname: str = wname) -> torch.Tensor:
            ref = mod._conv_forward(args[0], dense[wname], mod.bias)
            delta = (ref - out).double().mean(dim=(0, 2, 3)).to(out.dtype)
            deltas[wname] = delta
            return out + delta.view(1, -1, 1, 1)

        handles.append(conv.register_forward_hook(hook))
    try:
        sim.eval()
        sim(torch.from_numpy(np.ascontiguousarray(patches)).to(module_device(sim)))
    finally:
        for h in handles:
            h.remove()
    params = dict(module.named_parameters())
    return {
        wname: (params[wname.removesuffix("weight") + "bias"].detach() + delta).float().cpu().numpy()
        for wname, delta in deltas.items()
    }


def with_biases(masks: Mapping[str, NMMask], biases: Mapping[str, np.ndarray]) -> dict[str, NMMask]:
    """The masks with corrected biases attached (conv weight name -> bias values)."""
    return {
        w: replace(m, bias=np.asarray(biases[w], np.float32), fit="bias_correction") if w in biases else m
        for w, m in masks.items()
    }


def correct(
    module: nn.Module,
    masks: Mapping[str, NMMask],
    fit_patches: np.ndarray,
    eval_patches: np.ndarray,
    batch_size: int = 8,
) -> tuple[dict[str, NMMask], dict[str, Any]]:
    """Fit corrections, measure them, and return (the masks, with corrected biases if accepted; report)."""
    masks = dict(masks)
    if not masks:
        return masks, dict(applied=False, reason="no masks")
    biases = fit_biases(module, masks, fit_patches)
    if not biases:
        return masks, dict(applied=False, reason="no masked conv has a bias")
    dense = run(module, eval_patches, batch_size)
    corrected = with_biases(masks, biases)
    before = mse(run(with_masks(module, masks), eval_patches, batch_size), dense)
    after = mse(run(with_masks(module, corrected), eval_patches, batch_size), dense)
    accepted = after < before
    report = dict(
        applied=accepted,
        reason="lowers output MSE vs dense" if accepted else "does not lower output MSE vs dense: not applied",
        layers=len(biases),
        fit_patches=len(fit_patches),
        eval_patches=len(eval_patches),
        mse_masked=before,
        mse_corrected=after,
        psnr_vs_dense_masked_db=psnr_db(before),
        psnr_vs_dense_corrected_db=psnr_db(after),
    )
    return (corrected if accepted else masks), report
