"""Where INT8 costs the most: the flattest content, and the complexity below which it goes float.

On near-flat content the fp32 model is within ~50 dB of the ground truth, so the few-tenths-of-an-LSB noise
of 8-bit activations is most of the remaining error: a smooth gradient loses over 1 dB at W8A8 while textured
images lose hundredths. No static range fixes that (finer grids clip textured content). The float tier routes
such tiles to the unquantized model by the selector statistic the precision tiers already use.

The threshold is chosen on LR/HR calibration patches (drawn with their own seed, never from the validation
set): sorted by complexity, the highest complexity whose window of neighbours below it still loses more than
``max_drop_db`` on average, within ``max_share`` of the patches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from srdeploy.validate.metrics import psnr_y, quantize_8bit

MIN_WINDOW = 4


@dataclass(frozen=True)
class FloatThreshold:
    threshold: float | None  # None: no window loses more than the target, no float tier
    share: float  # share of the measured patches below the threshold
    window: int
    candidates: int  # patches measured (the lowest-complexity ones)


def patch_drops(
    reference: nn.Module, deployed: nn.Module, lr: np.ndarray, hr: np.ndarray, scale: int, batch: int = 8
) -> np.ndarray:
    """Y-PSNR drop (dB, reference minus deployed, both against HR) of each LR patch (N,3,h,w)."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(lr), batch):
            x = torch.from_numpy(np.ascontiguousarray(lr[i : i + batch]))
            ref = reference(x).clamp(0, 1).numpy().transpose(0, 2, 3, 1)
            dep = deployed(x).clamp(0, 1).numpy().transpose(0, 2, 3, 1)
            for j in range(len(x)):
                h = hr[i + j]
                out.append(psnr_y(quantize_8bit(ref[j]), h, scale) - psnr_y(quantize_8bit(dep[j]), h, scale))
    return np.asarray(out, dtype=np.float64)


def candidates(complexity: np.ndarray, max_share: float) -> np.ndarray:
    """Indices of the patches worth measuring: the lowest-complexity 2 x max_share (at least 2 windows)."""
    n = len(complexity)
    k = min(n, max(2 * MIN_WINDOW, int(np.ceil(2 * max_share * n))))
    return np.argsort(complexity, kind="stable")[:k]


def choose_threshold(
    complexity: Sequence[float], drops: Sequence[float], total: int, max_drop_db: float, max_share: float
) -> FloatThreshold:
    """``complexity``/``drops`` of measured patches (any order), out of ``total`` drawn.

    Windows of ``window`` consecutive patches by complexity; the threshold lies just above the last window
    (within ``max_share`` of ``total``) whose mean drop exceeds ``max_drop_db``, less the patches at that
    window's top that lose no more than the target themselves, midway to the next patch.
    """
    c = np.asarray(complexity, dtype=np.float64)
    d = np.asarray(drops, dtype=np.float64)
    order = np.argsort(c, kind="stable")
    c, d = c[order], d[order]
    limit = min(len(c), int(np.floor(max_share * total)))
    window = max(1, min(max(MIN_WINDOW, len(c) // 6), limit))
    last = None
    for end in range(window, limit + 1):  # window = patches [end - window, end)
        if float(np.mean(d[end - window : end])) > max_drop_db:
            last = end
    if last is None:
        return FloatThreshold(None, 0.0, window, len(c))
    while last > 1 and d[last - 1] <= max_drop_db:  # the window's own tail that does not lose stays quantized
        last -= 1
    upper = c[last] if last < len(c) else c[last - 1]
    return FloatThreshold(float((c[last - 1] + upper) / 2), last / total, window, len(c))
