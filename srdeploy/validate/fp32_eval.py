"""`srdeploy eval`: an fp32 model against bicubic on an image set (the model-card numbers)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from srdeploy.data.degrade import bicubic_upscale
from srdeploy.data.sets import image_categories, load_pairs
from srdeploy.models.loading import load_model
from srdeploy.progress import Progress, SilentProgress
from srdeploy.validate.metrics import psnr_y, ssim_y


def evaluate_fp32(
    model_source: str,
    dataset: str = "eval",
    max_images: int | None = None,
    arch: str | None = None,
    scale: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """``model_source``: a bundled model name or any checkpoint ``load_model`` reads (``arch`` as in
    a recipe's model.arch; ``scale`` for multi-scale checkpoints)."""
    model = load_model(model_source, arch=arch, **({} if scale is None else {"scale": scale}))
    categories = image_categories(dataset)
    rows = []
    pairs = load_pairs(dataset, model.scale, max_images)
    stage = (progress or SilentProgress()).stage(f"evaluate {len(pairs)} image(s)", total=len(pairs))
    with torch.no_grad(), stage as advance:
        for pair in pairs:
            x = torch.from_numpy(pair.lr.transpose(2, 0, 1).copy())[None]
            sr = model.module(x)[0].numpy().transpose(1, 2, 0)
            bic = bicubic_upscale(pair.lr, model.scale)
            rows.append(
                dict(
                    image=pair.name,
                    category=categories.get(pair.name, "uncategorised"),
                    size=f"{pair.hr.shape[1]}x{pair.hr.shape[0]}",
                    psnr_y=psnr_y(sr, pair.hr, model.scale),
                    ssim_y=ssim_y(sr, pair.hr, model.scale),
                    bicubic_psnr_y=psnr_y(bic, pair.hr, model.scale),
                    bicubic_ssim_y=ssim_y(bic, pair.hr, model.scale),
                )
            )
            advance(len(rows))
    mean = _mean(rows)
    by_category = {c: _mean([r for r in rows if r["category"] == c]) for c in sorted({r["category"] for r in rows})}
    return dict(
        model=model.name,
        arch=model.arch,
        scale=model.scale,
        dataset=dataset,
        images=rows,
        mean=mean,
        categories=by_category,
    )


_METRICS = ("psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y")


def _mean(rows: list[dict[str, Any]]) -> dict[str, float]:
    out = {k: float(np.mean([r[k] for r in rows])) for k in _METRICS}
    out["images"] = len(rows)
    return out


def eval_table(
    model_source: str,
    dataset: str = "eval",
    max_images: int | None = None,
    arch: str | None = None,
    scale: int | None = None,
    progress: Progress | None = None,
) -> object:
    from rich.markup import escape
    from rich.table import Table

    res = evaluate_fp32(model_source, dataset, max_images, arch, scale, progress)
    t = Table(
        title=escape(f"{res['model']} ({res['arch']} x{res['scale']}) on {dataset}: Y channel, shave {res['scale']}")
    )
    for c in ("image", "category", "HR size", "bicubic PSNR", "model PSNR", "gain", "bicubic SSIM", "model SSIM"):
        t.add_column(c, justify="left" if c in ("image", "category") else "right")
    summary = [
        dict(image=f"mean: {c}", category=f"{m['images']} images", size="", **m) for c, m in res["categories"].items()
    ]
    summary.append(dict(image="mean", category=f"{res['mean']['images']} images", size="", **res["mean"]))
    for r in res["images"] + summary:
        t.add_row(
            escape(r["image"]),
            escape(r["category"]),
            r["size"],
            f"{r['bicubic_psnr_y']:.2f}",
            f"{r['psnr_y']:.2f}",
            f"{r['psnr_y'] - r['bicubic_psnr_y']:+.2f}",
            f"{r['bicubic_ssim_y']:.4f}",
            f"{r['ssim_y']:.4f}",
        )
    return t
