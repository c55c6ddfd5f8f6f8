"""layers.png: per conv, weight bits (bars), activation bits per tier (markers) and N:M density.

Float layers are not drawn at some bit height: they sit in a separate band labelled with the float type
the profile's graph computes them in (FP16 for trt, FP32 for ort/openvino), hatched."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from srdeploy.quant import sites
from srdeploy.quant.plan import QuantPlan

FLOAT_LEVEL = 10.5  # centre of the float band, above 8 bits with a gap (float is not a bit count)
FLOAT_BAND = (9.5, 2.0)  # bottom, height


def float_label(plan: QuantPlan, profile: str) -> str:
    emission = plan.emission.get(profile)
    dtype = emission.float_dtype if emission is not None else "float32"
    return "FP16" if dtype == "float16" else "FP32"


def chart_profile(plan: QuantPlan) -> str:
    return "trt" if "trt" in plan.profiles else plan.profiles[0]


def layers_chart(plan: QuantPlan, path: Path, profile: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profile = profile or chart_profile(plan)
    flt = float_label(plan, profile)
    layers = plan.layers
    idx = np.arange(len(layers))
    fig, ax = plt.subplots(figsize=(max(6.5, 0.24 * len(layers)), 3.6), dpi=100)
    q = [i for i, x in enumerate(layers) if x.quantized]
    f = [i for i, x in enumerate(layers) if not x.quantized]
    ax.bar(q, [plan.weights[layers[i].weight].bits for i in q], color="#7a9cc6", label="weight bits")
    if f:
        bottom, height = FLOAT_BAND
        ax.bar(
            f,
            [height] * len(f),
            bottom=bottom,
            color="#eeeeee",
            edgecolor="#999999",
            hatch="//",
            label=f"float layer ({flt})",
        )
    markers = "osD^v"
    for k, t in enumerate(plan.tiers):
        acts = [t.activations.get(profile, {}).get(sites.site(x.weight, sites.INPUT)) for x in layers]
        ys = [a.bits if a is not None else np.nan for a in acts]
        name = f"activation bits, tier {t.name}" if len(plan.tiers) > 1 else "activation bits"
        ax.plot(idx, ys, ls="none", marker=markers[k % len(markers)], ms=4, color=f"C{k + 1}", label=name)
    if plan.masks:
        dens = [plan.masks[x.weight].keep.mean() * 8 if x.weight in plan.masks else np.nan for x in layers]
        ax.plot(idx, dens, "k^", ms=4, label="N:M density x 8")
    ax.axhline(9.0, color="#bbbbbb", lw=0.8, ls="--")
    ax.set_yticks([0, 2, 4, 6, 8, FLOAT_LEVEL])
    ax.set_yticklabels(["0", "2", "4", "6", "8", flt])
    ax.set_ylim(0, 14.5)
    ax.set_xticks(idx)
    ax.set_xticklabels([x.module for x in layers], rotation=90, fontsize=6)
    ax.set_ylabel("bits")
    ax.set_title(f"per-layer bits ({profile} graph)", fontsize=9)
    ax.legend(fontsize=7, ncol=4, loc="upper center")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
