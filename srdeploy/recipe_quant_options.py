"""The ``quant`` section's own sub-sections: adaptive bits (AdaBM maps, calib/bits.py and calib/layer_bits.py),
the float tier (stages/float_tier.py) and refinement (calib/refine.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from srdeploy.recipe_base import Section


def _ordered_percentiles(v: tuple[float, float]) -> tuple[float, float]:
    if not 0 <= v[0] < v[1] <= 100:
        raise ValueError(f"percentile pair {list(v)} must satisfy 0 <= low < high <= 100")
    return v


SENSITIVITY_KEYS = ("layer_extra_bits", "layer_min_offset", "layer_patches")  # compared by value: recipe.yaml
# (the resolved recipe a build writes) carries every default


class AdaptiveSection(Section):
    enabled: bool = False
    layer_bits: bool = True
    image_bits: bool = True
    layer_percentiles: tuple[float, float] = (30.0, 70.0)
    # layer-to-bit map: AdaBM's (input std percentiles) or the measured output error (calib/layer_bits.py)
    layer_map: Literal["std", "sensitivity"] = "std"
    layer_extra_bits: float = Field(0.25, ge=0, le=6, description="sensitivity: mean extra bits over body layers")
    layer_min_offset: int = Field(0, ge=-2, le=0, description="sensitivity: lowest layer offset (0: none below base)")
    layer_patches: int = Field(8, ge=1, le=256, description="sensitivity: calibration patches measured")
    image_percentiles: tuple[float, float] = (10.0, 90.0)
    # which content gets the extra bit: the busiest (AdaBM's map) or the flattest (calib/bits.py)
    image_order: Literal["busy_high", "flat_high"] = "busy_high"
    target_fab: float | None = Field(None, ge=2, le=8, description="highest expected FAB on the calibration patches")
    # the tiers above the base (positive image offset) keep the residual stream float (calib/tiers.py)
    high_tier_float_residuals: bool = Field(False, description="no Q/DQ on residual Adds in the tiers above the base")

    _check_percentiles = field_validator("layer_percentiles", "image_percentiles")(_ordered_percentiles)

    @model_validator(mode="after")
    def _float_residuals_need_image_tiers(self) -> AdaptiveSection:
        if self.high_tier_float_residuals and not self.image_bits:
            raise ValueError("high_tier_float_residuals applies to image tiers: set image_bits: true or remove it")
        return self

    @model_validator(mode="after")
    def _sensitivity_keys_need_the_map(self) -> AdaptiveSection:
        stray = [k for k in SENSITIVITY_KEYS if getattr(self, k) != type(self).model_fields[k].default]
        if stray and self.layer_map != "sensitivity":
            raise ValueError(f"{', '.join(stray)} apply to layer_map: sensitivity only; set it or remove them")
        return self


class FloatTierSection(Section):
    """stages/float_tier.py: route the flattest tiles to the unquantized model where INT8 costs most."""

    max_drop_db: float = Field(0.0, ge=0, description="0 disables; route patches whose drop exceeds this to float")
    max_share: float = Field(0.1, gt=0, le=0.5, description="at most this share of calibration patches go float")
    patches: int = Field(256, ge=16, le=2048, description="LR/HR patches drawn (seed apart) to choose the threshold")


class RefineSection(Section):
    steps: int = Field(0, ge=0, le=100_000, description="0 disables refinement")
    batch_size: int = Field(2, ge=1, le=256)
    patch_size: int = Field(48, ge=8, le=512)
    patches: int = Field(64, ge=1, le=10_000)
    lr_bounds: float = Field(0.01, gt=0)
    lr_thresholds: float = Field(0.1, gt=0)
    lr_layer_bits: float = Field(0.01, gt=0)
    loss: Literal["l1", "psnr", "drop"] = Field("l1", description="distance trained on and judged by (refine.py)")
    feature_weight: float = Field(10.0, ge=0)
    bit_weight: float = Field(50.0, ge=0)
    learn_bits: bool = True
    learn_weights: bool = Field(True, description="learn per-channel weight clips (else activation clips only)")
    phases: int = Field(10, ge=1, le=1000, description="parameter groups take turns; held-out check per phase")
    holdout_fraction: float = Field(0.25, gt=0, lt=1, description="share of refinement patches held out")
    patience: int = Field(3, ge=1, le=1000, description="phases without held-out improvement before stopping")
