"""Accuracy by content: the drop of every deployed execution per content category, and its worst images.

A mean over a photo set hides what breaks static ranges (flat gradients, high-contrast monochrome, line
art): the report gives each category and the worst images, and the worst image is gated
(``validate.thresholds.max_image_psnr_drop_db``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from srdeploy.validate.compare import Comparison

WORST_SHOWN = 3


def _drops(comparison: Comparison, execution: str) -> dict[str, float]:
    fp32 = {r.image: r.psnr_y for r in comparison.for_execution("fp32")}
    return {r.image: fp32[r.image] - r.psnr_y for r in comparison.for_execution(execution) if r.image in fp32}


def content_breakdown(
    comparison: Comparison, executions: Sequence[str], categories: Mapping[str, str]
) -> dict[str, Any]:
    """{execution: {by_category: {category: {images, mean_drop_db, worst_drop_db, worst_image}},
    worst_images: [{image, category, drop_db}]}} for each execution that has rows (Y-PSNR drop vs fp32)."""
    out: dict[str, Any] = {}
    for name in executions:
        drops = _drops(comparison, name)
        if not drops:
            continue
        by: dict[str, list[tuple[str, float]]] = {}
        for image, d in drops.items():
            by.setdefault(categories.get(image, "uncategorised"), []).append((image, d))
        table = {}
        for cat in sorted(by):
            worst = max(by[cat], key=lambda x: x[1])
            table[cat] = dict(
                images=len(by[cat]),
                mean_drop_db=round(float(np.mean([d for _, d in by[cat]])), 4),
                worst_drop_db=round(worst[1], 4),
                worst_image=worst[0],
            )
        ranked = sorted(drops.items(), key=lambda x: x[1], reverse=True)[:WORST_SHOWN]
        out[name] = dict(
            by_category=table,
            worst_images=[
                dict(image=i, category=categories.get(i, "uncategorised"), drop_db=round(d, 4)) for i, d in ranked
            ],
        )
    return out
