"""Can TensorRT run a conv on sparse tensor cores, and is it likely to pay? (plain dicts for reports)

* possible: the kept weights satisfy 2:4 along input channels (any N:4 with N <= 2 does, e.g. 1:4),
  C = in_channels / groups is a multiple of 4, and groups == 1 (TensorRT does not consider sparse
  kernels for grouped convs). TensorRT still times sparse against dense kernels and keeps the faster.
* tool_friendly: K % 8 == 0 and C % 16 == 0 (what NVIDIA's pruning tools require).
* likely to pay: C >= 256 and K >= 256. NVIDIA's TensorRT maintainers report that sparse conv
  kernels beat dense ones only when input/output channels are large enough (about 256 or more;
  NVIDIA/TensorRT issues #3849, #4065; a 64-channel 3x3 conv got no sparse tactic in #1403), and
  about 15% or less end-to-end for typical CNNs (#2310). Below that, expect little or no gain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from srdeploy.quant.plan import LayerInfo, NMMask
from srdeploy.sparsity.common import channels_per_group, pattern
from srdeploy.sparsity.nm import is_2of4

PAYOFF_CHANNELS = 256


def layer_eligibility(layer: LayerInfo, mask: NMMask | None) -> dict[str, Any]:
    c, k = channels_per_group(layer), layer.out_channels
    is_24 = mask is not None and is_2of4(mask.keep)
    possible = bool(is_24 and layer.groups == 1)
    tool_friendly = k % 8 == 0 and c % 16 == 0
    large = c >= PAYOFF_CHANNELS and k >= PAYOFF_CHANNELS
    if mask is None:
        why = "dense (no mask)"
    elif not is_24:
        why = f"{pattern(mask)} does not satisfy 2:4 (C={c}): fewer MACs on paper only"
    elif layer.groups != 1:
        why = "grouped conv: TensorRT does not use sparse kernels"
    elif not large:
        why = f"2:4-compatible, but C={c}, K={k} < {PAYOFF_CHANNELS}: little or no speed-up expected"
    else:
        why = f"2:4-compatible with C={c}, K={k} >= {PAYOFF_CHANNELS}: sparse kernels may be faster"
    return dict(
        weight=layer.weight,
        role=layer.role,
        c=c,
        k=k,
        kernel=list(layer.kernel),
        pattern=pattern(mask),
        sparse_tensor_cores=possible,
        tool_friendly=bool(tool_friendly),
        likely_speedup=bool(possible and large),
        macs_per_lr_pixel=layer.macs_per_lr_pixel,
        why=why,
    )


def shape_eligible(layer: LayerInfo) -> bool:
    """Could this conv take a 2:4 mask that TensorRT accepts (shape only)?"""
    return layer.groups == 1 and channels_per_group(layer) % 4 == 0


def model_eligibility(
    layers: Sequence[LayerInfo], masks: Mapping[str, NMMask], roles: Sequence[str] = ("body",)
) -> dict[str, Any]:
    """Per-layer rows and one plain sentence on whether a TensorRT speed-up should be expected."""
    rows = [layer_eligibility(x, masks.get(x.weight)) for x in layers]
    total = sum(x.macs_per_lr_pixel for x in layers) or 1.0
    sparse = [r for r in rows if r["sparse_tensor_cores"]]
    paying = [r for r in sparse if r["likely_speedup"]]
    scope = [x for x in layers if x.role in roles]
    widest = max((min(channels_per_group(x), x.out_channels) for x in scope), default=0)
    share = sum(r["macs_per_lr_pixel"] for r in paying) / total
    if masks:
        if not sparse:
            summary = (
                "No TensorRT speed-up from sparsity: no masked conv is 2:4-compatible "
                "(other N:M patterns reduce MACs on paper and compressed size only)."
            )
        elif not paying:
            summary = (
                f"No speed-up should be expected: {len(sparse)} convs are 2:4-compatible, but they have at most "
                f"{max(min(r['c'], r['k']) for r in sparse)} channels, and NVIDIA reports sparse kernels pay only "
                f"from about {PAYOFF_CHANNELS} channels (TensorRT will pick dense kernels). Sparsity here reduces "
                "MACs on paper and compressed model size."
            )
        else:
            summary = (
                f"A TensorRT speed-up may be possible: {len(paying)} of {len(sparse)} 2:4 convs have >= "
                f"{PAYOFF_CHANNELS} input and output channels ({share:.0%} of the model's MACs). Expect a modest "
                "end-to-end gain (NVIDIA reports <= ~15% for CNNs); measure with trtexec --sparsity=enable."
            )
    elif widest >= PAYOFF_CHANNELS:
        summary = (
            f"Convs of {list(roles)} have up to {widest} channels: 2:4 sparsity may speed up TensorRT "
            "(modestly; measure it)."
        )
    else:
        summary = (
            f"Convs of {list(roles)} have at most {widest} channels (< {PAYOFF_CHANNELS}): 2:4 sparsity "
            "should not be expected to speed up TensorRT."
        )
    return dict(
        sparse_tensor_core_layers=len(sparse),
        likely_speedup_layers=len(paying),
        likely_speedup_mac_share=share,
        max_channels=widest,
        summary=summary,
        layers=rows,
    )
