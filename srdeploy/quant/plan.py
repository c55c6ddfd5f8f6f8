"""QuantPlan: every decision a build makes, as typed plain data (saved as JSON + .npz by quant/plan_io.py).

The plan plus the model as trained reproduce every emitted graph without calibrating again
(``srdeploy emit``). Parts, in the order :func:`srdeploy.quant.apply.apply_plan` applies them:

- ``structure``: removed channels (filter pruning), with constants folded into the consumers' biases;
- ``masks``: N:M keep-masks, with re-fitted weights and biases (re-fit or bias correction) when any;
- ``equalization``: per-channel scales folded into producer and consumer convs (DAQ's static form);
- ``weights``: the weight grid of every quantized conv (per output channel, symmetric);
- ``bits`` + ``ranges`` -> ``tiers``: activation bit-widths per layer and tier (AdaBM's maps), the real
  interval each activation site was calibrated to, and the resulting grids per tier and profile;
- ``emission``: per-profile emission settings (opset, float dtype, INT4 weight packing).
Keys: a conv by its weight's parameter name, an activation site by ``quant.sites`` names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from srdeploy.errors import PlanError
from srdeploy.quant.grid import MAX_BITS, MIN_BITS
from srdeploy.quant.spec import QuantSpec

PLAN_VERSION = 2
SELECTOR_STATISTIC = "sobel_mean_x1000"  # calib/complexity.py and runtime/routing.py compute it


@dataclass(frozen=True)
class ModelRef:
    arch: str
    name: str
    scale: int
    hparams: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerInfo:
    weight: str
    module: str
    role: str
    quantized: bool
    reason: str
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    groups: int
    macs_per_lr_pixel: float


@dataclass(frozen=True, eq=False)
class NMMask:
    """Keep-mask of a conv weight (True = kept), at most ``n`` of every ``m`` input channels (sparsity/nm.py).
    ``weight`` / ``bias``: the re-fitted kept weights (zeros where pruned) and the conv's re-fitted or
    corrected bias, if any; ``fit`` says which method produced them (magnitude | refit | bias_correction |
    guard:magnitude | guard:<importance|magnitude>@<ridge>: sparsity/refit_guard.py)."""

    n: int
    m: int
    keep: np.ndarray
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    fit: str = "magnitude"

    def pruned(self, w: np.ndarray) -> np.ndarray:
        """The conv weight every execution uses: the re-fitted one, else ``w`` with the mask applied."""
        return w * self.keep if self.weight is None else np.asarray(self.weight, dtype=np.float32)


@dataclass(frozen=True, eq=False)
class ChannelGroup:
    """Channel equalization of one group of tensors joined by ReLU-like ops and Adds: channel c is divided
    by ``scale[c]`` at every producer conv (output rows and bias) and multiplied back at every consumer conv
    (input columns). The float function is unchanged."""

    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    scale: np.ndarray


@dataclass(frozen=True, eq=False)
class ChannelPruning:
    """Filter pruning of one channel group: output channels of ``producers`` (and the 1-D ``per_channel``
    parameters, e.g. a PReLU between them) outside ``keep`` are removed, and so are the matching input
    channels of ``consumers``. ``constants``: the value each removed channel would have carried (one per
    removed channel, in channel order), folded into the consumers' biases; None when removed channels are 0.
    ``consumer_weight`` / ``consumer_bias``: the re-fitted weight (already at the pruned shape) and bias of the
    single consumer (label-free recovery, sparsity/filter_recovery.py); they replace the sliced ones (and
    ``constants``) when set."""

    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    keep: tuple[int, ...]
    channels: int
    constants: np.ndarray | None = None
    per_channel: tuple[str, ...] = ()
    consumer_weight: np.ndarray | None = None
    consumer_bias: np.ndarray | None = None

    @property
    def removed(self) -> tuple[int, ...]:
        kept = set(self.keep)
        return tuple(i for i in range(self.channels) if i not in kept)


@dataclass(frozen=True)
class BitMap:
    """Activation bits per layer and tier: base + tier offset + layer offset (AdaBM's image- and layer-to-bit
    maps), clamped to [2, 8]. Residual skips at ``skip_bits``, non-body convs and conv outputs at 8 bit.
    ``thresholds`` route an image or tile to a tier by ``statistic`` (len = tiers - 1, ascending).
    ``float_below``: images/tiles whose statistic is below it go to a float tier (index ``len(tier_offsets)``,
    no quantization at all; stages/float_tier.py), ahead of every bit tier. ``float_residual_tiers``: bit tiers
    that leave the residual stream (skip operands and the conv outputs that are residual branches) float."""

    base: int = 8
    weight_bits: int = 8
    skip_bits: int = 8
    layer_offsets: Mapping[str, int] = field(default_factory=dict)
    tier_offsets: tuple[int, ...] = (0,)
    thresholds: tuple[float, ...] = ()
    statistic: str = SELECTOR_STATISTIC
    float_below: float | None = None
    # tiers whose residual stream stays float: no grid on the sites an ActRange marks ``residual``
    float_residual_tiers: tuple[int, ...] = ()

    def bits(self, weight: str, tier: int) -> int:
        b = self.base + self.tier_offsets[tier] + self.layer_offsets.get(weight, 0)
        return int(min(MAX_BITS, max(MIN_BITS, b)))

    @property
    def adaptive(self) -> bool:
        return len(self.tier_offsets) > 1

    @property
    def float_tier(self) -> int | None:
        """Index of the float tier, or None when the plan has none."""
        return None if self.float_below is None else len(self.tier_offsets)

    def selector(self) -> Selector | None:
        """Bit tiers by ``thresholds``; the float tier, if any, takes everything below ``float_below``."""
        tiers, thresholds = tuple(range(len(self.tier_offsets))), tuple(self.thresholds)
        if self.float_below is not None:
            below = sum(t <= self.float_below for t in thresholds)
            thresholds = (self.float_below, *thresholds[below:])
            tiers = (len(self.tier_offsets), *tiers[below:])
        if len(tiers) < 2:
            return None
        return Selector(self.statistic, thresholds, tiers)

    @property
    def default_tier(self) -> int:
        return self.tier_offsets.index(0) if 0 in self.tier_offsets else 0


@dataclass(frozen=True)
class Selector:
    """Routes an LR image/tile to a tier: value < thresholds[0] -> tiers[0], ..., >= thresholds[-1] -> tiers[-1]."""

    statistic: str
    thresholds: tuple[float, ...]
    tiers: tuple[int, ...]

    def route(self, value: float) -> int:
        return self.tiers[int(np.searchsorted(np.asarray(self.thresholds), value, side="right"))]


@dataclass(frozen=True)
class ActRange:
    """The real interval an activation site was calibrated to, and what its grid kind depends on.
    ``reuse``: the site whose grid this one takes over (ORT conv outputs feeding one quantized conv).
    ``residual``: the site is on the residual stream (a residual Add's skip operand, or the conv output that is
    its branch): BitMap.float_residual_tiers leave it float."""

    lo: float
    hi: float
    nonnegative: bool = False
    reuse: str | None = None
    residual: bool = False


@dataclass(frozen=True)
class Tier:
    """``quantized`` False: the float tier (no Q/DQ, float weights; activations empty for every profile)."""

    index: int
    name: str
    activations: Mapping[str, Mapping[str, QuantSpec]]  # profile -> site -> spec
    quantized: bool = True

    def sites(self, profile: str) -> Mapping[str, QuantSpec]:
        if profile not in self.activations:
            raise PlanError(f"tier {self.name} has no '{profile}' profile", f"profiles: {sorted(self.activations)}")
        return self.activations[profile]


@dataclass(frozen=True)
class Emission:
    """How one profile's graphs are written: ONNX opset, float dtype of unquantized regions, INT4 weights."""

    opset: int = 19
    float_dtype: str = "float32"
    int4_weights: bool = False


@dataclass(frozen=True)
class Provenance:
    """Where the plan came from (descriptive: nothing is computed from it)."""

    recipe: str = ""
    recipe_digest: str = ""
    method: str = ""
    weight_method: str = ""
    calibration_patches: int = 0
    refinement: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class QuantPlan:
    model: ModelRef
    layers: tuple[LayerInfo, ...]
    structure: tuple[ChannelPruning, ...] = ()
    masks: Mapping[str, NMMask] = field(default_factory=dict)
    equalization: tuple[ChannelGroup, ...] = ()
    weights: Mapping[str, QuantSpec] = field(default_factory=dict)
    bits: BitMap = field(default_factory=BitMap)
    ranges: Mapping[str, Mapping[str, ActRange]] = field(default_factory=dict)  # profile -> site -> range
    tiers: tuple[Tier, ...] = ()
    emission: Mapping[str, Emission] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)
    version: int = PLAN_VERSION

    def layer(self, weight: str) -> LayerInfo:
        for info in self.layers:
            if info.weight == weight:
                return info
        raise PlanError(f"plan has no layer '{weight}'", "the plan was made for another model")

    def quantized_layers(self) -> list[LayerInfo]:
        return [x for x in self.layers if x.quantized]

    def tier(self, index: int) -> Tier:
        for t in self.tiers:
            if t.index == index:
                return t
        raise PlanError(f"plan has no tier {index}", f"tiers: {[t.index for t in self.tiers]}")

    @property
    def default_tier(self) -> int:
        return self.bits.default_tier

    @property
    def profiles(self) -> tuple[str, ...]:
        return tuple(sorted(self.emission))

    @property
    def selector(self) -> Selector | None:
        return self.bits.selector()
