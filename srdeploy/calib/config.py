"""Calibration settings as a small validated dataclass (the recipe's ``quant`` section maps here)."""

from __future__ import annotations

from dataclasses import dataclass

from srdeploy.quant.grid import check_bits

RANGE_CHOICES = ("minmax", "percentile", "mse", "daq", "adabm")
SKIP_CHOICES = ("all", "block", "none")


@dataclass(frozen=True)
class QuantConfig:
    weight_bits: int = 8
    act_bits: int = 8
    method: str = "percentile"
    weight_method: str = "auto"  # minmax | mse | auto (mse below 8 bit)
    percentile: float = 99.99
    # Roles quantized: body at weight_bits/act_bits, any other listed role at 8 bit (AdaBM's
    # 'fully quantized' setting lists head, upsampler and tail).
    quantize_roles: tuple[str, ...] = ("body",)
    residual_skips: str = "block"
    skip_bits: int = 8
    adaptive: bool = False  # AdaBM precision tiers
    layer_bits: bool = True
    image_bits: bool = True
    layer_percentiles: tuple[float, float] = (30.0, 70.0)
    image_percentiles: tuple[float, float] = (10.0, 90.0)
    equalize: bool = False  # DAQ channel equalization (on by default for method daq)
    equalize_strength: float = 1.0

    def __post_init__(self) -> None:
        check_bits(self.weight_bits)
        check_bits(self.act_bits)
        check_bits(self.skip_bits)
        bad = set(self.quantize_roles) - {"head", "body", "upsampler", "tail"}
        if bad or "body" not in self.quantize_roles:
            raise ValueError(
                "quant.quantize_roles must include body and only use head, body, upsampler, tail; "
                f"got {self.quantize_roles}"
            )
        if self.method not in RANGE_CHOICES:
            raise ValueError(f"quant.method must be one of {RANGE_CHOICES}, got {self.method!r}")
        if self.weight_method not in ("auto", "minmax", "mse"):
            raise ValueError(f"quant.weight_method must be auto, minmax or mse, got {self.weight_method!r}")
        if self.residual_skips not in SKIP_CHOICES:
            raise ValueError(f"quant.residual_skips must be one of {SKIP_CHOICES}, got {self.residual_skips!r}")
        if not 0.0 < self.percentile <= 100.0:
            raise ValueError(f"quant.percentile must be in (0, 100], got {self.percentile}")
        if not 0.0 <= self.equalize_strength <= 1.0:
            raise ValueError("quant.equalize_strength must be in [0, 1]")
        for lo, hi in (self.layer_percentiles, self.image_percentiles):
            if not 0 <= lo < hi <= 100:
                raise ValueError(f"percentile pair ({lo}, {hi}) must satisfy 0 <= lo < hi <= 100")

    @property
    def resolved_weight_method(self) -> str:
        if self.weight_method != "auto":
            return self.weight_method
        return "mse" if self.weight_bits < 8 else "minmax"

    @property
    def range_method(self) -> str:
        """The per-tensor range method used for activations."""
        return {"adabm": "mse", "daq": "mse"}.get(self.method, self.method)
