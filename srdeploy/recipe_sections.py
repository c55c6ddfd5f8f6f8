"""The recipe's sections (the one schema the library uses): each a frozen pydantic model, unknown keys refused."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from srdeploy.recipe_base import Section
from srdeploy.recipe_quant_options import AdaptiveSection, FloatTierSection, RefineSection
from srdeploy.trtexec_syntax import parse_shape, translate_keys

_Section = Section  # the name the sections (and recipe_calib.py) derive from


MAX_NAME = 100  # leaves room under NAME_MAX (255) for the .NAME.partial-XXXX / NAME.failed siblings


def check_name(name: str) -> str:
    """A recipe name is one folder name under builds/: it must not escape, hide or be empty."""
    if not name.strip():
        raise ValueError("must not be empty (it names the build folder builds/<name>)")
    if "/" in name or "\\" in name or ".." in name:
        raise ValueError(f"{name!r} must not contain '/', '\\' or '..' (it names one folder under builds/)")
    if name.startswith(".") or name != name.strip() or not name.isprintable():
        raise ValueError(f"{name!r} must not start with '.', have surrounding spaces or control characters")
    if len(name) > MAX_NAME:
        raise ValueError(f"is {len(name)} characters long; use at most {MAX_NAME}")
    return name


class ModelSection(_Section):
    name: str | None = Field(None, description="bundled reference model (e.g. edsr_baseline_x4)")
    path: str | None = Field(None, description="checkpoint file (.pt/.pth/.safetensors)")
    arch: str | None = Field(None, description="architecture; auto-detected from the state dict when unset")
    scale: int | None = Field(None, ge=1, le=16, description="override the detected scale (multi-scale checkpoints)")
    rgb_range: float | None = Field(None, gt=0, le=65535, description="pixel range the checkpoint was trained with")

    @model_validator(mode="after")
    def _one_source(self) -> ModelSection:
        if (self.name is None) == (self.path is None):
            raise ValueError("set exactly one of model.name or model.path")
        return self


class QuantSection(_Section):
    weight_bits: int = Field(8, ge=2, le=8)
    act_bits: int = Field(8, ge=2, le=8)
    method: Literal["minmax", "percentile", "mse", "daq", "adabm"] = "percentile"
    weight_method: Literal["auto", "minmax", "mse"] = "auto"
    percentile: float = Field(99.99, gt=0, le=100)
    clip_floor: float = Field(0.05, gt=0, le=1, description="mse: the range is never clipped below this x min/max")
    quantize_roles: tuple[Literal["head", "body", "upsampler", "tail"], ...] = ("body",)
    residual_skips: Literal["all", "block", "none"] = "block"
    skip_bits: int = Field(8, ge=2, le=8)
    equalize: bool | None = Field(None, description="DAQ channel equalization; default on for methods daq, adabm")
    equalize_strength: float = Field(1.0, ge=0, le=1)
    adaptive: AdaptiveSection = AdaptiveSection()
    refine: RefineSection = RefineSection()
    float_tier: FloatTierSection = FloatTierSection()
    int4_weights: bool = Field(True, description="ort profile: store <=4-bit weights as INT4 (opset 21)")
    float_budget: float = Field(
        0.0, ge=0, le=1, description="share of quantized MACs that may stay float where sensitivity says it pays"
    )
    float_min_gain_db: float = Field(0.05, ge=0, description="float_budget: least output-PSNR gain worth a layer")
    sensitivity_patches: int = Field(16, ge=1, le=256, description="calibration patches the sensitivity uses")
    exclude: tuple[str, ...] = Field((), description="convs kept in float: module paths, node names or op:<OpType>")

    @field_validator("exclude")
    @classmethod
    def _exclude_syntax(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for entry in v:
            if not entry.strip() or entry != entry.strip():
                raise ValueError(f"entry {entry!r} is empty or has surrounding spaces")
            if entry.startswith("op:") and not entry[3:].isidentifier():
                raise ValueError(f"entry {entry!r}: write an ONNX op type after 'op:', e.g. op:Conv")
        return v

    @field_validator("quantize_roles")
    @classmethod
    def _body_included(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if "body" not in v:
            raise ValueError("quantize_roles must include 'body'")
        return tuple(sorted(set(v), key=("head", "body", "upsampler", "tail").index))

    @property
    def resolved_weight_method(self) -> str:
        """Weight clipping: as set, or MSE-optimal below 8 bit and min/max at 8 bit ('auto')."""
        if self.weight_method != "auto":
            return self.weight_method
        return "mse" if self.weight_bits < 8 else "minmax"

    @property
    def range_method(self) -> str:
        """The per-tensor activation range method (adabm and daq use bit-aware MSE clipping)."""
        return {"adabm": "mse", "daq": "mse"}.get(self.method, self.method)

    @property
    def equalize_enabled(self) -> bool:
        """DAQ channel equalization: as set, on by default for daq and adabm (AdaBM's tiers start from the
        static DAQ ranges)."""
        return self.equalize if self.equalize is not None else self.method in ("daq", "adabm")


FILTER_POLICIES = ("bn_filter", "l1_filter")


class SparsitySection(_Section):
    policy: Literal["none", "uniform", "sls", "bn_filter", "l1_filter"] = "none"
    n: int = Field(2, ge=1, le=32)
    m: int = Field(4, ge=2, le=32)
    candidates: tuple[tuple[int, int], ...] = ((4, 4), (3, 4), (2, 4), (1, 4))
    mac_budget: float = Field(0.5, gt=0, le=1, description="sls: fraction of dense body MACs to keep")
    include_roles: tuple[Literal["head", "body", "upsampler", "tail"], ...] = ("body",)
    bn_threshold: float = Field(0.01, gt=0, lt=1, description="bn_filter: max P(active) or relative spread")
    bn_max_fraction: float = Field(0.5, gt=0, le=1, description="bn_filter: at most this share of a layer")
    bn_ratio: float | None = Field(None, gt=0, lt=1, description="filter pruning: share of prunable filters removed")
    bn_layer_ratios: dict[str, Annotated[float, Field(gt=0, lt=1)]] = Field(
        default_factory=dict, description="filter pruning: share removed per block path (e.g. body.3), fixed"
    )
    bn_mac_budget: float | None = Field(None, gt=0, lt=1, description="filter pruning: fraction of body MACs kept")
    recovery: bool = Field(False, description="filter pruning: least-squares re-fit of each pruned block's consumer")
    bias_correction: bool = True
    refit: bool = Field(True, description="re-select masks by activation importance and re-fit kept weights")
    refit_guard: bool = Field(
        False, description="refit: per layer, plain mask or re-fit (mask kind, ridge) by held-out output error"
    )
    refit_ridges: tuple[Annotated[float, Field(gt=0, le=100)], ...] = Field(
        (0.01, 0.1, 1.0), min_length=1, description="refit_guard: ridge strengths tried (x mean Gram diagonal)"
    )
    refit_holdout: float = Field(0.25, gt=0, le=0.5, description="refit_guard: share of patches held out")
    refit_augment: int = Field(1, ge=1, le=8, description="refit: dihedral views of each patch in the Grams")
    sensitivity_patches: int = Field(16, ge=1, le=1000)

    @model_validator(mode="after")
    def _patterns(self) -> SparsitySection:
        for n, m in ((self.n, self.m), *self.candidates):
            if not 0 < n <= m:
                raise ValueError(f"N:M pattern {n}:{m} needs 0 < N <= M")
        if not self.candidates:
            raise ValueError("candidates is empty; list N:M pairs, e.g. [[4, 4], [2, 4], [1, 4]]")
        return self._filter_targets()

    def _filter_targets(self) -> SparsitySection:
        if self.bn_ratio is not None and self.bn_mac_budget is not None:
            raise ValueError("set one of bn_ratio (share of filters removed) or bn_mac_budget (share of MACs kept)")
        if self.policy not in FILTER_POLICIES and (self.has_filter_target or self.recovery):
            raise ValueError(
                "bn_ratio, bn_layer_ratios, bn_mac_budget and recovery apply to policy bn_filter or l1_filter, "
                f"not {self.policy!r}"
            )
        if self.policy == "l1_filter" and not self.has_filter_target:
            raise ValueError("policy l1_filter needs a target: set bn_ratio, bn_layer_ratios or bn_mac_budget")
        return self

    @property
    def has_filter_target(self) -> bool:
        """Filter pruning to a ratio or MAC budget (else bn_filter removes dead/constant channels only)."""
        return self.bn_ratio is not None or self.bn_mac_budget is not None or bool(self.bn_layer_ratios)

    @property
    def sls_options(self) -> tuple[tuple[int, int], ...]:
        """Candidate patterns, de-duplicated, with a dense option first (the solver may keep a layer dense)."""
        opts = {(int(n), int(m)) for n, m in self.candidates if n < m}
        return ((1, 1), *sorted(opts, key=lambda p: (-p[0] / p[1], p[1])))


class ExportSection(_Section):
    opset: int = Field(19, ge=13, le=23)
    profiles: tuple[str, ...] = Field(("trt", "ort"), description="deployment profiles to emit (srdeploy.profiles)")

    @field_validator("profiles")
    @classmethod
    def _known_profiles(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from srdeploy.profiles import PROFILES

        if not v:
            raise ValueError(f"list at least one profile ({', '.join(PROFILES)})")
        unknown = [p for p in v if p not in PROFILES]
        if unknown:
            raise ValueError(f"unknown profile(s) {unknown}; known: {', '.join(PROFILES)}")
        if len(set(v)) != len(v):
            raise ValueError(f"lists a profile twice: {list(v)}")
        return v


Dim = Annotated[int, Field(ge=1, le=65536)]


Shape = Annotated[tuple[Dim, Dim, Dim], BeforeValidator(parse_shape)]  # (N, H, W), or trtexec's input:NxCxHxW


class TensorRTSection(_Section):
    """trtexec spellings are accepted too (srdeploy/trtexec_syntax.py): minShapes=input:1x3x16x16, memPoolSize,
    hardwareCompatibilityLevel, versionCompatible."""

    enabled: bool = True
    required: bool = False
    min_shape: Shape = (1, 16, 16)  # (N, H, W) of the LR input
    opt_shape: Shape = (1, 256, 256)
    max_shape: Shape = (4, 720, 1280)
    workspace_mb: int = Field(4096, ge=64)
    sparse_weights: bool | None = None  # default: on when the plan has 2:4 masks
    hardware_compatibility: Literal["none", "ampere_plus", "same_compute_capability"] = "none"
    version_compatible: bool = False
    timing_cache_dir: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _trtexec_keys(cls, data: object) -> object:
        return translate_keys(data)

    @model_validator(mode="after")
    def _ordered(self) -> TensorRTSection:
        for i, dim in enumerate("NHW"):
            if not self.min_shape[i] <= self.opt_shape[i] <= self.max_shape[i]:
                raise ValueError(
                    f"{dim}: min_shape {self.min_shape[i]} <= opt_shape {self.opt_shape[i]} <= "
                    f"max_shape {self.max_shape[i]} does not hold"
                )
        return self


class Thresholds(_Section):
    max_psnr_drop_db: float | None = Field(None, ge=0, description="fp32 Y-PSNR minus deployed, mean over images")
    max_image_psnr_drop_db: float | None = Field(None, ge=0, description="same, per image")
    min_psnr_db: float | None = None
    min_agreement_db: float | None = Field(40.0, description="simulation vs deployment PSNR (float outputs)")
    max_fp32_below_bicubic_db: float | None = Field(
        1.0, ge=0, description="sanity check: fp32 mean Y-PSNR against HR may be at most this far below bicubic"
    )


class ValidateSection(_Section):
    dataset: str = Field("eval", min_length=1)
    max_images: int | None = Field(None, ge=1)
    thresholds: Thresholds = Thresholds()
    tile: int | None = Field(None, ge=8, description="route tiles of this LR size to tiers")
    tile_overlap: int = Field(16, ge=0, le=256, description="LR context pixels around each tile")
    threads: int = Field(2, ge=1, le=1024)
    reference: Literal["hr", "fp32"] = Field(
        "hr", description="hr: a model worse than bicubic fails validation; fp32 (GAN/perceptual models): it warns"
    )
