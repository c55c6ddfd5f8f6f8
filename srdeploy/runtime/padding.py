"""Pad to the graph's size rules outside the graph, crop the output by the scale (srdeploy/size_rules.py).

Used by the app runtime (whole images and tiles) and by the validator, so both run exactly the same sizes.
Padding goes to the bottom and right, as the networks' own ``check_image_size`` does, so cropping the top-left
``scale * (H, W)`` of the output gives the unpadded image. NumPy only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from srdeploy.size_rules import SizeRules

InferFn = Callable[[np.ndarray], np.ndarray]  # (N,3,h,w) float32 -> (N,3,sh,sw)


def pad_batch(x: np.ndarray, rules: SizeRules) -> np.ndarray:
    """(N,C,H,W) -> (N,C,H',W') with H', W' the sizes the graph accepts (``x`` itself when it already fits)."""
    _, _, h, w = x.shape
    ph, pw = rules.padded(h) - h, rules.padded(w) - w
    if not ph and not pw:
        return x
    widths = ((0, 0), (0, 0), (0, ph), (0, pw))
    if rules.pad_mode == "constant":
        return np.pad(x, widths, mode="constant")
    # NumPy's reflect mode reflects repeatedly when the pad is larger than the image (a 3-pixel tile padded to 16)
    return np.pad(x, widths, mode="reflect") if min(h, w) > 1 else np.pad(x, widths, mode="edge")


def run_padded(infer: InferFn, x: np.ndarray, rules: SizeRules, scale: int) -> np.ndarray:
    """``infer`` on ``x`` padded to ``rules``, in batches of ``rules.batch`` when the graph has a fixed batch,
    cropped back to ``scale`` times ``x``'s size."""
    if rules.trivial:
        return infer(x)
    n, _, h, w = x.shape
    padded = pad_batch(x, rules)
    step = rules.batch or n
    if n % step:
        raise ValueError(f"batch {n} is not a multiple of the graph's fixed batch {step}")
    parts = [infer(np.ascontiguousarray(padded[i : i + step])) for i in range(0, n, step)]
    y = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return y[:, :, : h * scale, : w * scale]
