"""The recipe's sections (the one schema the library uses): each a frozen pydantic model, unknown keys refused."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from srdeploy.trtexec_syntax import parse_shape, translate_keys


class _Section(BaseModel):
    # NaN/inf pass every ge/le bound, so no recipe float may be one (`rgb_range: .nan`).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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


def _ordered_percentiles(v: tuple[float, float]) -> tuple[float, float]:
    if not 0 <= v[0] < v[1] <= 100:
        raise ValueError(f"percentile pair {list(v)} must satisfy 0 <= low < high <= 100")
    return v


class AdaptiveSection(_Section):
    enabled: bool = False
    layer_bits: bool = True
    image_bits: bool = True
    layer_percentiles: tuple[float, float] = (30.0, 70.0)
    layer_map: Literal["std", "sensitivity"] = Field(
        "std",
        description="layer-to-bit map: AdaBM's (input std percentiles) or measured output error per layer "
        "(calib/layer_bits.py)",
    )
    layer_extra_bits: float = Field(0.25, ge=0, le=6, description="sensitivity: mean extra bits over body layers")
    layer_min_offset: int = Field(0, ge=-2, le=0, description="sensitivity: lowest layer offset (0: none below base)")
    layer_patches: int = Field(8, ge=1, le=256, description="sensitivity: calibration patches measured")
    image_percentiles: tuple[float, float] = (10.0, 90.0)
    image_order: Literal["busy_high", "flat_high"] = Field(
        "busy_high",
        description="which content gets the extra bit: the busiest (AdaBM's map) or the flattest (where the PSNR "
        "drop per bit is largest; calib/bits.py)",
    )
    target_fab: float | None = Field(
        None, ge=2, le=8, description="highest expected FAB on the calibration patches (narrows the +1-bit tier)"
    )

    _check_percentiles = field_validator("layer_percentiles", "image_percentiles")(_ordered_percentiles)

    @model_validator(mode="after")
    def _sensitivity_keys_need_the_map(self) -> AdaptiveSection:
        keys = ("layer_extra_bits", "layer_min_offset", "layer_patches")
        # values, not keys: a resolved recipe (recipe.yaml of a build) writes every default
        stray = [k for k in keys if getattr(self, k) != type(self).model_fields[k].default]
        if stray and self.layer_map != "sensitivity":
            raise ValueError(f"{', '.join(stray)} apply to layer_map: sensitivity only; set it or remove them")
        return self


class FloatTierSection(_Section):
    """stages/float_tier.py: route the flattest tiles to the unquantized model where INT8 costs most."""

    max_drop_db: float = Field(0.0, ge=0, description="0 disables; route patches whose drop exceeds this to float")
    max_share: float = Field(0.1, gt=0, le=0.5, description="at most this share of calibration patches go float")
    patches: int = Field(256, ge=16, le=2048, description="LR/HR patches drawn (seed apart) to choose the threshold")


class RefineSection(_Section):
    steps: int = Field(0, ge=0, le=100_000, description="0 disables refinement")
    batch_size: int = Field(2, ge=1, le=256)
    patch_size: int = Field(48, ge=8, le=512)
    patches: int = Field(64, ge=1, le=10_000)
    lr_bounds: float = Field(0.01, gt=0)
    lr_thresholds: float = Field(0.1, gt=0)
    lr_layer_bits: float = Field(0.01, gt=0)
    feature_weight: float = Field(10.0, ge=0)
    bit_weight: float = Field(50.0, ge=0)
    learn_bits: bool = True
    phases: int = Field(10, ge=1, le=1000, description="parameter groups take turns; held-out check per phase")
    holdout_fraction: float = Field(0.25, gt=0, lt=1, description="share of refinement patches held out")
    patience: int = Field(3, ge=1, le=1000, description="phases without held-out improvement before stopping")


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
