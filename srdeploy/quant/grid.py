"""Numeric primitives: integer grids, scales and THE fake-quantization function (NumPy and torch twins).

A grid is ``bits`` wide and either *signed* (zero point 0; q in [-2^(b-1), 2^(b-1)-1], or the *narrow*
symmetric range [-(2^(b-1)-1), 2^(b-1)-1] used for weights, as TensorRT expects) or *unsigned* (q in
[0, 2^b-1] with a zero point). Rounding is half-to-even, like ONNX QuantizeLinear, ``np.round`` and
``torch.round``. Scales are rounded to float16-representable values once, so the fp32 ONNX Runtime graph,
the FP16 TensorRT graph and the PyTorch simulation use the same numbers.

Every execution of a plan (simulation, calibration's range search, refinement, QDQ weight emission) goes
through :func:`fake_quant_np` or :func:`fake_quant_torch`; the two are tested against each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where used: plans load and print without it (srdeploy inspect)
    import torch

MIN_BITS, MAX_BITS = 2, 8
FP16_TINY = float(np.finfo(np.float16).smallest_subnormal)
FP16_MAX = float(np.finfo(np.float16).max)


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
    """Round scales to the nearest float16 value (kept as float32), never below the smallest subnormal."""
    s = np.asarray(scale, dtype=np.float32)
    r = s.astype(np.float16).astype(np.float32)
    return np.maximum(r, np.float32(FP16_TINY))


def fp16_representable_torch(scale: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`fp16_representable`; differentiable (straight-through) for refinement."""
    import torch

    rounded = scale.to(torch.float16).to(scale.dtype).clamp_min(FP16_TINY)
    return scale + (rounded - scale).detach()


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


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round forward, identity backward (straight-through estimator)."""
    import torch

    return x + (torch.round(x) - x).detach()


def fake_quant_torch(
    x: torch.Tensor,
    scale: torch.Tensor,
    zp: torch.Tensor,
    qmin: int | torch.Tensor,
    qmax: int | torch.Tensor,
    ste: bool = False,
) -> torch.Tensor:
    """Same maths as :func:`fake_quant_np`; ``scale``/``zp`` (and tensor ``qmin``/``qmax``, e.g. per-sample
    bit-widths) broadcast against ``x``. ``ste``: straight-through rounding, so gradients reach ``x`` and the
    scale (refinement)."""
    import torch

    q = (round_ste if ste else torch.round)(x / scale) + zp
    lo = qmin if isinstance(qmin, torch.Tensor) else torch.tensor(float(qmin), dtype=x.dtype, device=x.device)
    hi = qmax if isinstance(qmax, torch.Tensor) else torch.tensor(float(qmax), dtype=x.dtype, device=x.device)
    q = torch.minimum(torch.maximum(q, lo), hi)
    return (q - zp) * scale


def broadcast_shape(ndim: int, axis: int | None, channels: int) -> tuple[int, ...]:
    if axis is None:
        return ()
    shape = [1] * ndim
    shape[axis] = channels
    return tuple(shape)


def fake_quant_range_torch(
    x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, bits: torch.Tensor, grid: str
) -> torch.Tensor:
    """Differentiable twin of ``spec_for_range(lo, hi, bits, grid).fake_quant(x)`` (quant/spec.py): learnable
    range ends, per-sample ``bits`` (broadcast against ``x``), fp16-rounded scale, straight-through rounding.
    Used by refinement; tested against the NumPy path."""
    import torch

    if grid == "symmetric":
        top = torch.pow(2.0, bits - 1.0) - 1.0
        scale = fp16_representable_torch(torch.maximum(lo.abs(), hi.abs()).clamp_min(1e-12) / top)
        return fake_quant_torch(x, scale, torch.zeros_like(scale), -top - 1.0, top, ste=True)
    levels = torch.pow(2.0, bits) - 1.0
    if grid == "unsigned_zero":
        scale = fp16_representable_torch(hi.clamp_min(0.0).clamp_min(1e-12) / levels)
        return fake_quant_torch(x, scale, torch.zeros_like(scale), torch.zeros_like(levels), levels, ste=True)
    if grid == "asymmetric":
        lo0, hi0 = lo.clamp_max(0.0), hi.clamp_min(0.0)
        scale = fp16_representable_torch((hi0 - lo0).clamp_min(1e-12) / levels)
        zp = torch.minimum(torch.clamp(round_ste(-lo0 / scale), min=0.0), levels)
        return fake_quant_torch(x, scale, zp, torch.zeros_like(levels), levels, ste=True)
    raise ValueError(f"unknown grid kind {grid!r}")
