"""QuantSpec: how one tensor is quantized (bits, grid, scale(s), zero point(s), granularity), and the
three activation grid kinds a range is fitted to:

- ``symmetric``: signed, zero point 0 (TensorRT activations at 8 bit, every weight);
- ``unsigned_zero``: q >= 0 with zero point 0, for non-negative tensors (fits a signed int8 container);
- ``asymmetric``: unsigned with a zero point (ONNX Runtime's uint8 activations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from srdeploy.quant.grid import (
    broadcast_shape,
    fake_quant_np,
    fake_quant_torch,
    qrange,
    quantize_np,
    symmetric_scale,
    unsigned_scale_zero_point,
)

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True, eq=False)
class QuantSpec:
    """``axis`` None means per-tensor; otherwise one scale per index along ``axis``.

    ``lo``/``hi`` record the real range the grid was fitted to (for reports); the grid itself
    is fully defined by bits, signed, narrow, scale and zero_point. ``narrow`` (signed grids only)
    drops the most negative level: symmetric weights in [-127, 127] at 8 bit.
    """

    bits: int
    signed: bool
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None
    lo: float = 0.0
    hi: float = 0.0
    narrow: bool = False

    @property
    def qmin(self) -> int:
        return qrange(self.bits, self.signed, self.narrow)[0]

    @property
    def qmax(self) -> int:
        return qrange(self.bits, self.signed, self.narrow)[1]

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    @property
    def symmetric(self) -> bool:
        return bool(np.all(self.zero_point == 0))

    def clip_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Real values of the grid's ends (what a b-bit Clip before an 8-bit Q keeps)."""
        zp = self.zero_point.astype(np.float32)
        return (self.qmin - zp) * self.scale, (self.qmax - zp) * self.scale

    def _shaped(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        shape = broadcast_shape(ndim, self.axis, int(self.scale.size))
        return self.scale.reshape(shape), self.zero_point.reshape(shape)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        s, z = self._shaped(np.ndim(x))
        return quantize_np(x, s, z, self.qmin, self.qmax)

    def fake_quant(self, x: np.ndarray) -> np.ndarray:
        s, z = self._shaped(np.ndim(x))
        return fake_quant_np(x, s, z, self.qmin, self.qmax)

    def fake_quant_torch(self, x: torch.Tensor, ste: bool = False) -> torch.Tensor:
        """``ste``: straight-through rounding (gradients pass to ``x``; the refinement student needs it)."""
        import torch

        s, z = self._shaped(x.dim())
        return fake_quant_torch(
            x,
            torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32)).to(x.device),
            torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)).to(x.device),
            self.qmin,
            self.qmax,
            ste=ste,
        )

    def with_bits(self, bits: int) -> QuantSpec:
        """The same real range on a grid of another width (used to derive precision tiers)."""
        if self.signed:
            return symmetric_spec(
                max(abs(self.lo), abs(self.hi)), bits, lo=self.lo, hi=self.hi, axis=self.axis, narrow=self.narrow
            )
        return unsigned_spec(self.lo, self.hi, bits)

    def narrowed(self, bits: int) -> QuantSpec:
        """A symmetric grid (per channel where this one is) of ``bits`` over the same per-channel clips."""
        if not self.signed or not self.symmetric:
            raise ValueError("only symmetric signed grids (weights) can be narrowed")
        return symmetric_spec(self.scale.astype(np.float64) * self.qmax, bits, axis=self.axis, narrow=self.narrow)

    def same_grid(self, other: QuantSpec) -> bool:
        return (
            self.bits == other.bits
            and self.signed == other.signed
            and self.narrow == other.narrow
            and self.axis == other.axis
            and np.array_equal(self.scale, other.scale)
            and np.array_equal(self.zero_point, other.zero_point)
        )

    def describe(self) -> dict[str, Any]:
        grid = ("signed-narrow" if self.narrow else "signed") if self.signed else "unsigned"
        out: dict[str, Any] = dict(bits=self.bits, grid=grid)
        out["granularity"] = "per-tensor" if self.axis is None else f"per-channel(axis={self.axis})"
        if self.axis is None:
            out.update(scale=float(self.scale), zero_point=int(self.zero_point), lo=self.lo, hi=self.hi)
        return out


GRIDS = ("symmetric", "unsigned_zero", "asymmetric")


def fit_grid(lo: float, hi: float, grid: str) -> tuple[float, float]:
    """Adjust an interval to a grid kind's constraints."""
    if grid == "symmetric":
        m = max(abs(lo), abs(hi))
        return -m, m
    if grid == "unsigned_zero":
        return 0.0, max(hi, 0.0)
    if grid == "asymmetric":
        return min(lo, 0.0), max(hi, 0.0)
    raise ValueError(f"unknown grid kind {grid!r}; expected one of {GRIDS}")


def spec_for_range(lo: float, hi: float, bits: int, grid: str) -> QuantSpec:
    """The per-tensor grid of kind ``grid`` fitted to the real interval [lo, hi]."""
    if grid == "symmetric":
        return symmetric_spec(max(abs(lo), abs(hi)), bits, lo=lo, hi=hi)
    if grid == "unsigned_zero":
        return unsigned_spec(0.0, hi, bits)
    if grid == "asymmetric":
        return unsigned_spec(lo, hi, bits)
    raise ValueError(f"unknown grid kind {grid!r}; expected one of {GRIDS}")


def symmetric_spec(
    absmax: float | np.ndarray,
    bits: int,
    lo: float | None = None,
    hi: float | None = None,
    axis: int | None = None,
    narrow: bool = False,
) -> QuantSpec:
    """Signed grid, zero point 0, scale = absmax / (2^(b-1) - 1) (values beyond are clipped)."""
    am = np.asarray(absmax, dtype=np.float64)
    scale = symmetric_scale(am, bits)
    top = float(np.max(am)) if am.size else 0.0
    return QuantSpec(
        bits=bits,
        signed=True,
        scale=np.asarray(scale, dtype=np.float32),
        zero_point=np.zeros(scale.shape, dtype=np.int32),
        axis=axis,
        lo=-top if lo is None else float(lo),
        hi=top if hi is None else float(hi),
        narrow=narrow,
    )


def unsigned_spec(lo: float, hi: float, bits: int) -> QuantSpec:
    """Per-tensor asymmetric grid; with lo >= 0 the zero point is 0 (fits a signed container)."""
    scale, zp = unsigned_scale_zero_point(lo, hi, bits)
    return QuantSpec(
        bits=bits,
        signed=False,
        scale=scale.astype(np.float32),
        zero_point=zp,
        axis=None,
        lo=min(float(lo), 0.0),
        hi=max(float(hi), 0.0),
    )
