"""Image complexity for AdaBM's image-to-bit mapping: 1000 x mean |Sobel gradient| of the
grayscale LR input (Sobel kernels normalised by 8, replicate padding, x and y averaged)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
_KERNEL = torch.stack([_SOBEL_X, _SOBEL_X.t()])[:, None]  # (2,1,3,3)
_GRAY = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
STATISTIC = "sobel_mean_x1000"


def complexity_torch(x: torch.Tensor) -> torch.Tensor:
    """(N,3,H,W) RGB in [0,1] -> (N,) complexity values."""
    gray = (x.float() * _GRAY.to(x.device)).sum(1, keepdim=True)
    padded = F.pad(gray, (1, 1, 1, 1), mode="replicate")
    grad = F.conv2d(padded, _KERNEL.to(x.device))
    return 1000.0 * grad.abs().mean(dim=(1, 2, 3))


def complexity(images: np.ndarray) -> np.ndarray:
    """NumPy wrapper: (N,3,H,W) or (3,H,W) or (H,W,3) float [0,1] -> (N,) float64."""
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[-1] == 3 and arr.shape[0] != 3:
        arr = arr.transpose(2, 0, 1)
    if arr.ndim == 3:
        arr = arr[None]
    with torch.no_grad():
        return complexity_torch(torch.from_numpy(np.ascontiguousarray(arr))).double().numpy()
