"""Recipe schema: a YAML file validated, defaulted and hashed. Unknown keys are errors.

``load_recipe(path, overrides=["quant.act_bits=6"])`` applies ``--set`` style overrides before
validation. ``Recipe.digest`` is a hash of the resolved recipe (what a build records).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from srdeploy.errors import RecipeError


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


class CalibSection(_Section):
    set: str | None = Field("train", min_length=1, description="named image set in calib_data/")
    folder: str | None = Field(None, min_length=1, description="folder of HR images (instead of set)")
    patches: int = Field(64, ge=1, le=100_000)
    patch_size: int = Field(48, ge=8, le=1024, description="LR patch size")
    batch_size: int = Field(8, ge=1, le=1024)


class AdaptiveSection(_Section):
    enabled: bool = False
    layer_bits: bool = True
    image_bits: bool = True
    layer_percentiles: tuple[float, float] = (30.0, 70.0)
    image_percentiles: tuple[float, float] = (10.0, 90.0)


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


class QuantSection(_Section):
    weight_bits: int = Field(8, ge=2, le=8)
    act_bits: int = Field(8, ge=2, le=8)
    method: Literal["minmax", "percentile", "mse", "daq", "adabm"] = "percentile"
    weight_method: Literal["auto", "minmax", "mse"] = "auto"
    percentile: float = Field(99.99, gt=0, le=100)
    quantize_roles: tuple[Literal["head", "body", "upsampler", "tail"], ...] = ("body",)
    residual_skips: Literal["all", "block", "none"] = "block"
    skip_bits: int = Field(8, ge=2, le=8)
    equalize: bool | None = Field(None, description="DAQ channel equalization; default on for method daq")
    equalize_strength: float = Field(1.0, ge=0, le=1)
    adaptive: AdaptiveSection = AdaptiveSection()
    refine: RefineSection = RefineSection()
    int4_weights: bool = Field(True, description="ort profile: store <=4-bit weights as INT4 (opset 21)")

    @field_validator("quantize_roles")
    @classmethod
    def _body_included(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if "body" not in v:
            raise ValueError("quantize_roles must include 'body'")
        return tuple(sorted(set(v), key=("head", "body", "upsampler", "tail").index))


class SparsitySection(_Section):
    policy: Literal["none", "uniform", "sls", "bn_filter"] = "none"
    n: int = Field(2, ge=1, le=32)
    m: int = Field(4, ge=2, le=32)
    candidates: tuple[tuple[int, int], ...] = ((4, 4), (3, 4), (2, 4), (1, 4))
    mac_budget: float = Field(0.5, gt=0, le=1, description="sls: fraction of dense body MACs to keep")
    include_roles: tuple[Literal["head", "body", "upsampler", "tail"], ...] = ("body",)
    bn_threshold: float = Field(0.01, gt=0, lt=1, description="bn_filter: max P(active) or relative spread")
    bn_max_fraction: float = Field(0.5, gt=0, le=1, description="bn_filter: at most this share of a layer")
    bias_correction: bool = True
    refit: bool = Field(True, description="re-select masks by activation importance and re-fit kept weights")
    sensitivity_patches: int = Field(16, ge=1, le=1000)


class ExportSection(_Section):
    opset: int = Field(19, ge=13, le=23)
    profiles: tuple[Literal["trt", "ort"], ...] = Field(("trt", "ort"), min_length=1)

    @field_validator("profiles")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError(f"lists a profile twice: {list(v)}")
        return v


Dim = Annotated[int, Field(ge=1, le=65536)]


class TensorRTSection(_Section):
    enabled: bool = True
    required: bool = False
    min_shape: tuple[Dim, Dim, Dim] = (1, 16, 16)  # (N, H, W) of the LR input
    opt_shape: tuple[Dim, Dim, Dim] = (1, 256, 256)
    max_shape: tuple[Dim, Dim, Dim] = (4, 720, 1280)
    workspace_mb: int = Field(4096, ge=64)
    sparse_weights: bool | None = None  # default: on when the plan has 2:4 masks
    hardware_compatibility: Literal["none", "ampere_plus", "same_compute_capability"] = "none"
    version_compatible: bool = False
    timing_cache_dir: str | None = None

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


class ValidateSection(_Section):
    dataset: str = Field("eval", min_length=1)
    max_images: int | None = Field(None, ge=1)
    thresholds: Thresholds = Thresholds()
    tile: int | None = Field(None, ge=8, description="route tiles of this LR size to tiers")
    tile_overlap: int = Field(16, ge=0, le=256, description="LR context pixels around each tile")
    threads: int = Field(2, ge=1, le=1024)


class Recipe(_Section):
    name: Annotated[str, AfterValidator(check_name)]
    description: str = ""
    seed: int = Field(0, ge=0, le=2**63 - 1)
    model: ModelSection
    calib: CalibSection = CalibSection()
    quant: QuantSection = QuantSection()
    sparsity: SparsitySection = SparsitySection()
    export: ExportSection = ExportSection()
    tensorrt: TensorRTSection = TensorRTSection()
    validate_: ValidateSection = Field(ValidateSection(), alias="validate")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)

    @property
    def digest(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise RecipeError(f"override '{text}' is not of the form key.path=value", "e.g. --set quant.act_bits=6")
    key, _, raw = text.partition("=")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise RecipeError(f"override '{text}': value is not valid YAML ({exc})", "quote strings, e.g. a.b='x'") from exc
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RecipeError(f"override '{text}': '{part}' is not a section", "check the key path")
        node[path[-1]] = value
    return data


def recipe_from_dict(data: dict[str, Any], origin: str = "recipe") -> Recipe:
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise RecipeError(f"{origin} is invalid: {problems}", "see recipes/README.md for every key") from None


def load_recipe(path: str | os.PathLike[str], overrides: list[str] | None = None) -> Recipe:
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a recipe file" if path.is_dir() else "not found"
        raise RecipeError(f"recipe {path} {what}", "pass an existing YAML file, e.g. recipes/int8_edsr_x4.yaml")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(
            f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
            "save the recipe as UTF-8 YAML",
        ) from None
    except OSError as exc:
        raise RecipeError(f"cannot read recipe {path}: {exc.strerror or exc}", "check the file's permissions") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}", "fix the YAML syntax") from exc
    if not isinstance(data, dict):
        raise RecipeError(f"{path} must be a YAML mapping at the top level", "see recipes/README.md")
    data.setdefault("name", path.stem)
    return recipe_from_dict(apply_overrides(data, list(overrides or [])), str(path))
