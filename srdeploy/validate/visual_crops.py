"""One crop strip per image: where the crop sits, the same HR region from every output with the crop's own
Y-PSNR, and |deployed - fp32| amplified with its colour scale (8-bit levels)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from srdeploy.data.degrade import bicubic_upscale
from srdeploy.data.sets import SRPair
from srdeploy.validate.metrics import psnr_y

CROP = 96


def crop_box(ref: np.ndarray, other: np.ndarray, size: int = CROP) -> tuple[int, int]:
    """Top-left corner (y, x) of the size x size window with the largest |ref - other| energy."""
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


def difference_levels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| in 8-bit levels (0..255), the largest channel per pixel."""
    return np.abs(np.clip(a, 0, 1) - np.clip(b, 0, 1)).max(axis=2) * 255.0


def _psnr_label(crop: np.ndarray, hr_crop: np.ndarray) -> str:
    value = psnr_y(crop, hr_crop, 0)
    return "crop: identical to HR" if not np.isfinite(value) else f"crop {value:.2f} dB"


def _locator(ax, hr: np.ndarray, y: int, x: int, size: int) -> None:
    from matplotlib.patches import Rectangle

    ax.imshow(np.clip(hr, 0, 1), interpolation="nearest")
    ax.add_patch(Rectangle((x - 0.5, y - 0.5), size, size, fill=False, edgecolor="#ff2a2a", lw=1.5))
    ax.set_title("where", fontsize=8)
    ax.set_xlabel(f"x {x}..{x + size - 1}, y {y}..{y + size - 1}", fontsize=7)
    ax.tick_params(labelsize=6)


def _panel(ax, img: np.ndarray, y: int, x: int, size: int, title: str, label: str) -> None:
    extent = (x - 0.5, x + size - 0.5, y + size - 0.5, y - 0.5)
    ax.imshow(np.clip(img[y : y + size, x : x + size], 0, 1), interpolation="nearest", extent=extent)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel(label, fontsize=7)
    ax.set_xticks([x, x + size - 1])
    ax.set_yticks([y, y + size - 1])
    ax.tick_params(labelsize=6)


def _diff_panel(fig, ax, levels: np.ndarray, name: str) -> None:
    top = max(float(levels.max()), 1.0)  # at least one 8-bit level full scale
    im = ax.imshow(levels, cmap="inferno", vmin=0.0, vmax=top, interpolation="nearest")
    ax.set_title(f"|{name} - fp32|", fontsize=8)
    ax.set_xlabel(f"x{255.0 / top:.0f} amplified; max {levels.max():.2f} levels", fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("8-bit levels", fontsize=7)
    bar.ax.tick_params(labelsize=6)


def crop_strip(pair: SRPair, scale: int, outputs: Mapping[str, np.ndarray], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {"HR": pair.hr, "bicubic": bicubic_upscale(pair.lr, scale), **outputs}
    deployed = [k for k in outputs if k != "fp32"]
    worst = deployed[0] if deployed else "fp32"
    y, x = crop_box(outputs["fp32"], outputs[worst])
    size = min(CROP, pair.hr.shape[0], pair.hr.shape[1])
    hr_crop = pair.hr[y : y + size, x : x + size]
    n = len(panels) + 1 + (1 if deployed else 0)
    fig, axes = plt.subplots(1, n, figsize=(2.3 * n, 2.9), dpi=100)
    axes = list(np.atleast_1d(axes))
    _locator(axes[0], pair.hr, y, x, size)
    for ax, (name, img) in zip(axes[1:], panels.items(), strict=False):
        label = "reference" if name == "HR" else _psnr_label(img[y : y + size, x : x + size], hr_crop)
        _panel(ax, img, y, x, size, name, label)
    if deployed:
        crop = outputs[worst][y : y + size, x : x + size]
        _diff_panel(fig, axes[-1], difference_levels(crop, outputs["fp32"][y : y + size, x : x + size]), worst)
    fig.suptitle(
        f"{pair.name}: HR crop at x={x}, y={y} ({size}x{size} px); PSNR = Y-PSNR of the crop vs HR", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
