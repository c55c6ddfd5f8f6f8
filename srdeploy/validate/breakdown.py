"""Accuracy by content: the Y-PSNR drop of every execution against fp32, per content category, and the worst
images. The one place this arithmetic lives: report.json's ``content`` section, the report's category and
worst-image tables (report_facts) and the difference maps (visual) all take it from here.

A mean over a photo set hides what breaks static ranges (flat gradients, high-contrast monochrome, line
art): the report gives each category and the worst images, and the worst image is gated
(``validate.thresholds.max_image_psnr_drop_db``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from srdeploy.data.categories import UNCATEGORISED

WORST_SHOWN = 3
Row = tuple[str, str, "float | None"]  # (image, execution, Y-PSNR)
Drops = dict[tuple[str, str], float]


def drops_vs_fp32(rows: Iterable[Row]) -> Drops:
    """(image, execution) -> Y-PSNR drop vs the fp32 row of the same image (dB), for every non-fp32 row."""
    rows = list(rows)
    fp32 = {image: psnr for image, ex, psnr in rows if ex == "fp32" and psnr is not None}
    return {
        (image, ex): fp32[image] - psnr
        for image, ex, psnr in rows
        if ex != "fp32" and image in fp32 and psnr is not None
    }


def worst_by_image(drops: Drops, executions: Iterable[str]) -> list[tuple[str, float, str]]:
    """(image, drop, execution) with each image's largest drop over ``executions``, worst image first."""
    wanted = set(executions)
    worst: dict[str, tuple[float, str]] = {}
    for (image, ex), drop in drops.items():
        if ex in wanted and (image not in worst or drop > worst[image][0]):
            worst[image] = (drop, ex)
    return [(image, d, ex) for image, (d, ex) in sorted(worst.items(), key=lambda kv: -kv[1][0])]


def by_category(images: Iterable[str], categories: Mapping[str, str]) -> dict[str, list[str]]:
    """category -> its images (in the given order), categories sorted by name."""
    groups: dict[str, list[str]] = {}
    for image in images:
        groups.setdefault(categories.get(image, UNCATEGORISED), []).append(image)
    return {c: groups[c] for c in sorted(groups)}


def content_breakdown(drops: Drops, executions: Sequence[str], categories: Mapping[str, str]) -> dict[str, Any]:
    """{execution: {by_category: {category: {images, mean_drop_db, worst_drop_db, worst_image}},
    worst_images: [{image, category, drop_db}]}} for each execution that has rows."""
    out: dict[str, Any] = {}
    for name in executions:
        mine = {image: d for (image, ex), d in drops.items() if ex == name}
        if not mine:
            continue
        table = {}
        for cat, images in by_category(mine, categories).items():
            worst = max(images, key=mine.__getitem__)
            table[cat] = dict(
                images=len(images),
                mean_drop_db=round(float(np.mean([mine[i] for i in images])), 4),
                worst_drop_db=round(mine[worst], 4),
                worst_image=worst,
            )
        ranked = worst_by_image(drops, [name])[:WORST_SHOWN]
        out[name] = dict(
            by_category=table,
            worst_images=[
                dict(image=i, category=categories.get(i, UNCATEGORISED), drop_db=round(d, 4)) for i, d, _ in ranked
            ],
        )
    return out
