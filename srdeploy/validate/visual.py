"""The visual half of a report: people look before they trust a number.

- ``crops-<image>.png``: the same HR region from HR, bicubic, fp32 and every deployed execution,
  for the images where deployment lost the most against fp32; the region is where the deployed
  output differs most from fp32.
- ``layers.png``: per layer, weight and activation bits (per tier) and N:M density.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from srdeploy.data.degrade import bicubic_upscale
from srdeploy.data.sets import SRPair
from srdeploy.quant import sites
from srdeploy.quant.plan import QuantPlan
from srdeploy.validate.compare import Comparison, Execution

CROP = 96


def worst_images(comparison: Comparison, deployments: Sequence[str], count: int = 3) -> list[str]:
    fp32 = {r.image: r.psnr_y for r in comparison.for_execution("fp32")}
    drops: dict[str, float] = {}
    for name in deployments:
        for r in comparison.for_execution(name):
            drops[r.image] = max(drops.get(r.image, -np.inf), fp32[r.image] - r.psnr_y)
    return [k for k, _ in sorted(drops.items(), key=lambda kv: -kv[1])[:count]]


def crop_box(ref: np.ndarray, other: np.ndarray, size: int = CROP) -> tuple[int, int]:
    """Top-left corner of the size x size window with the largest |ref - other| energy."""
    h, w = ref.shape[:2]
    size = min(size, h, w)
    diff = np.abs(ref - other).mean(axis=2)
    step = max(1, size // 4)
    best, pos = -1.0, (0, 0)
    for y in range(0, h - size + 1, step):
        for x in range(0, w - size + 1, step):
            e = float(diff[y : y + size, x : x + size].sum())
            if e > best:
                best, pos = e, (y, x)
    return pos


def crop_strip(
    pair: SRPair, scale: int, outputs: Mapping[str, np.ndarray], path: Path, subtitle: Mapping[str, str]
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {"HR": pair.hr, "bicubic": bicubic_upscale(pair.lr, scale), **outputs}
    deployed = [k for k in outputs if k != "fp32"]
    y, x = crop_box(outputs["fp32"], outputs[deployed[0]] if deployed else outputs["fp32"])
    size = min(CROP, pair.hr.shape[0], pair.hr.shape[1])
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.6), dpi=100)
    for ax, (name, img) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        ax.imshow(np.clip(img[y : y + size, x : x + size], 0, 1), interpolation="nearest")
        ax.set_title(name, fontsize=8)
        ax.set_xlabel(subtitle.get(name, ""), fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{pair.name}: HR crop at ({x}, {y}), {size}x{size}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def layers_chart(plan: QuantPlan, path: Path, profile: str = "trt") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = plan.layers
    idx = np.arange(len(layers))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.22 * len(layers)), 3.2), dpi=100)
    wbits = [plan.weights[x.weight].bits if x.quantized else 32 for x in layers]
    ax.bar(idx, [min(b, 16) for b in wbits], color="#cccccc", label="weight bits (32 shown as 16)")
    for t in plan.tiers:
        abits = [(t.activations.get(profile, {}).get(sites.site(x.weight, sites.INPUT)) or None) for x in layers]
        ax.plot(idx, [a.bits if a else np.nan for a in abits], marker="o", ms=3, lw=1, label=f"act bits, tier {t.name}")
    if plan.masks:
        dens = [plan.masks[x.weight].keep.mean() * 8 if x.weight in plan.masks else np.nan for x in layers]
        ax.plot(idx, dens, "k^", ms=4, label="N:M density x 8")
    ax.set_xticks(idx)
    ax.set_xticklabels([x.module for x in layers], rotation=90, fontsize=6)
    ax.set_ylabel("bits")
    ax.set_ylim(0, 17)
    ax.legend(fontsize=7, ncol=3, loc="upper center")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_visuals(
    folder: Path,
    plan: QuantPlan,
    comparison: Comparison,
    executions: Sequence[Execution],
    pairs: Sequence[SRPair],
    scale: int,
    run: Callable[[Execution, np.ndarray], np.ndarray],
    count: int = 3,
) -> dict[str, str]:
    """Write the PNGs into ``folder``; returns name -> relative path for the report."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {"layers": str(layers_chart(plan, folder / "layers.png").name)}
    deployments = [e.name for e in executions if e.kind == "deployment"]
    by_name = {p.name: p for p in pairs}
    rows = {(r.image, r.execution): r for r in comparison.rows}
    for image in worst_images(comparison, deployments, count):
        pair = by_name[image]
        outputs = {e.name: run(e, pair.lr) for e in executions if e.kind in ("reference", "deployment")}
        subtitle = {n: f"{rows[(image, n)].psnr_y:.2f} dB" for n in outputs if (image, n) in rows}
        p = crop_strip(pair, scale, outputs, folder / f"crops-{image}.png", subtitle)
        out[f"crops-{image}"] = p.name
    return out
