"""The visual half of a report: people look before they trust a number.

- ``crops-<image>.png`` (visual_crops.py): the same HR region from HR, bicubic, fp32 and every deployed
  execution, each with the crop's own PSNR, plus an amplified difference map with its colour scale, for
  the images where deployment lost the most against fp32; the region is where the worst deployed output
  differs most from fp32.
- ``layers.png`` (visual_bits.py): per layer, weight and activation bits (per tier), float layers apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from srdeploy.data.sets import SRPair
from srdeploy.quant.plan import QuantPlan
from srdeploy.validate.breakdown import worst_by_image
from srdeploy.validate.compare import Comparison, Execution
from srdeploy.validate.visual_bits import layers_chart
from srdeploy.validate.visual_crops import crop_strip


def worst_images(comparison: Comparison, deployments: Sequence[str], count: int = 3) -> list[str]:
    return [image for image, _, _ in worst_by_image(comparison.drops(), deployments)[:count]]


def _worst_first(comparison: Comparison, image: str, deployments: Sequence[str]) -> list[str]:
    """Deployments ordered by their Y-PSNR on ``image``, lowest first (the diff map shows the first)."""
    rows = {r.execution: r.psnr_y for r in comparison.rows if r.image == image}
    return sorted(deployments, key=lambda d: rows.get(d, np.inf))


def write_visuals(
    folder: Path,
    plan: QuantPlan,
    comparison: Comparison,
    executions: Sequence[Execution],
    pairs: Sequence[SRPair],
    scale: int,
    run: Callable[[Execution, np.ndarray], np.ndarray],
    done: Callable[[int], None] | None = None,
    count: int = 3,
) -> dict[str, str]:
    """Write the PNGs into ``folder``; returns name -> relative path for the report."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {"layers": str(layers_chart(plan, folder / "layers.png").name)}
    deployments = [e.name for e in executions if e.kind == "deployment"]
    by_name = {p.name: p for p in pairs}
    by_exec = {e.name: e for e in executions}
    for k, image in enumerate(worst_images(comparison, deployments, count)):
        pair = by_name[image]
        names = ["fp32", *_worst_first(comparison, image, deployments)]
        outputs = {n: run(by_exec[n], pair.lr) for n in names if n in by_exec}
        p = crop_strip(pair, scale, outputs, folder / f"crops-{image}.png")
        out[f"crops-{image}"] = p.name
        if done:
            done(k + 1)
    return out
