"""Numeric primitives: integer grids, scales, fake quantization (NumPy and torch, same maths).

A grid is ``bits`` wide and either *signed* (zero point 0; q in [-2^(b-1), 2^(b-1)-1], or the
*narrow* symmetric range [-(2^(b-1)-1), 2^(b-1)-1] used for weights, as TensorRT expects) or
*unsigned* (q in [0, 2^b-1] with a zero point). Rounding is half-to-even, like ONNX
QuantizeLinear, ``np.round`` and ``torch.round``.
"""

from __future__ import annotations

import numpy as np
import torch

MIN_BITS, MAX_BITS = 2, 8
FP16_TINY = float(np.finfo(np.float16).smallest_subnormal)


def check_bits(bits: int) -> int:
    if not MIN_BITS <= int(bits) <= MAX_BITS:
        raise ValueError(f"bit-width {bits} outside [{MIN_BITS}, {MAX_BITS}]")
    return int(bits)


def qrange(bits: int, signed: bool, narrow: bool = False) -> tuple[int, int]:
    check_bits(bits)
    if signed:
        m = 2 ** (bits - 1) - 1
        return (-m if narrow else -m - 1), m
    return 0, 2**bits - 1


def fp16_representable(scale: np.ndarray) -> np.ndarray:
    """Round scales to the nearest float16 value (kept as float32).

    TensorRT's strongly typed FP16 graphs carry FP16 scales; rounding once here makes every
    execution (simulation, ONNX Runtime fp32, TensorRT fp16) use the same scale values.
    """
    s = np.asarray(scale, dtype=np.float32)
    r = s.astype(np.float16).astype(np.float32)
    return np.maximum(r, np.float32(FP16_TINY))


def symmetric_scale(absmax: np.ndarray, bits: int) -> np.ndarray:
    _, qmax = qrange(bits, signed=True)
    return fp16_representable(np.maximum(np.asarray(absmax, dtype=np.float64), 1e-12) / qmax)


def unsigned_scale_zero_point(lo: float, hi: float, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric grid over [lo, hi] that represents 0 exactly (lo <= 0 <= hi enforced)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    _, qmax = qrange(bits, signed=False)
    scale = fp16_representable(np.array(max(hi - lo, 1e-12) / qmax))
    zp = np.clip(np.round(-lo / float(scale)), 0, qmax).astype(np.int32)
    return scale, np.asarray(zp, dtype=np.int32)


def quantize_np(x: np.ndarray, scale: np.ndarray, zp: np.ndarray, qmin: int, qmax: int) -> np.ndarray:
    s = np.asarray(scale, dtype=np.float32)
    q = np.round(np.asarray(x, dtype=np.float32) / s) + np.asarray(zp, dtype=np.float32)
    return np.clip(q, qmin, qmax).astype(np.int32)


def fake_quant_np(x: np.ndarray, scale: np.ndarray, zp: np.ndarray, qmin: int, qmax: int) -> np.ndarray:
    q = quantize_np(x, scale, zp, qmin, qmax)
    return ((q - np.asarray(zp, dtype=np.int32)).astype(np.float32) * np.asarray(scale, dtype=np.float32)).astype(
        np.float32
    )


def fake_quant_torch(x: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor, qmin: int, qmax: int) -> torch.Tensor:
    """Same maths as :func:`fake_quant_np`; ``scale``/``zp`` broadcast against ``x``."""
    q = torch.clamp(torch.round(x / scale) + zp, qmin, qmax)
    return (q - zp) * scale


def broadcast_shape(ndim: int, axis: int | None, channels: int) -> tuple[int, ...]:
    if axis is None:
        return ()
    shape = [1] * ndim
    shape[axis] = channels
    return tuple(shape)
