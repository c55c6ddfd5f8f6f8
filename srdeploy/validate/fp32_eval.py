"""`srdeploy eval`: an fp32 model against bicubic on an image set (the model-card numbers)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from srdeploy.data.degrade import bicubic_upscale
from srdeploy.data.sets import load_pairs
from srdeploy.models.loading import load_model
from srdeploy.validate.metrics import psnr_y, ssim_y


def evaluate_fp32(model_source: str, dataset: str = "eval", max_images: int | None = None) -> dict[str, Any]:
    model = load_model(model_source)
    rows = []
    with torch.no_grad():
        for pair in load_pairs(dataset, model.scale, max_images):
            x = torch.from_numpy(pair.lr.transpose(2, 0, 1).copy())[None]
            sr = model.module(x)[0].numpy().transpose(1, 2, 0)
            bic = bicubic_upscale(pair.lr, model.scale)
            rows.append(
                dict(
                    image=pair.name,
                    size=f"{pair.hr.shape[1]}x{pair.hr.shape[0]}",
                    psnr_y=psnr_y(sr, pair.hr, model.scale),
                    ssim_y=ssim_y(sr, pair.hr, model.scale),
                    bicubic_psnr_y=psnr_y(bic, pair.hr, model.scale),
                    bicubic_ssim_y=ssim_y(bic, pair.hr, model.scale),
                )
            )
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y")}
    return dict(model=model.name, arch=model.arch, scale=model.scale, dataset=dataset, images=rows, mean=mean)


def eval_table(model_source: str, dataset: str = "eval", max_images: int | None = None) -> object:
    from rich.markup import escape
    from rich.table import Table

    res = evaluate_fp32(model_source, dataset, max_images)
    t = Table(
        title=escape(f"{res['model']} ({res['arch']} x{res['scale']}) on {dataset}: Y channel, shave {res['scale']}")
    )
    for c in ("image", "HR size", "bicubic PSNR", "model PSNR", "gain", "bicubic SSIM", "model SSIM"):
        t.add_column(c, justify="right" if c != "image" else "left")
    for r in res["images"] + [dict(image="mean", size="", **res["mean"])]:
        t.add_row(
            escape(r["image"]),
            r["size"],
            f"{r['bicubic_psnr_y']:.2f}",
            f"{r['psnr_y']:.2f}",
            f"{r['psnr_y'] - r['bicubic_psnr_y']:+.2f}",
            f"{r['bicubic_ssim_y']:.4f}",
            f"{r['ssim_y']:.4f}",
        )
    return t
