"""Recipe schema: a YAML file validated, defaulted and hashed. Unknown keys are errors.

``load_recipe(path, overrides=["quant.act_bits=6"])`` applies ``--set`` style overrides before
validation. ``Recipe.digest`` is a hash of the resolved recipe (what a build records).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from srdeploy.errors import RecipeError
from srdeploy.recipe_calib import CalibSection
from srdeploy.recipe_sections import (  # noqa: F401  (re-exported: the schema lives in recipe_sections)
    MAX_NAME,
    AdaptiveSection,
    ExportSection,
    ModelSection,
    QuantSection,
    RefineSection,
    SparsitySection,
    TensorRTSection,
    Thresholds,
    ValidateSection,
    _Section,
    check_name,
)


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

    @model_validator(mode="after")
    def _hr_where_needed(self) -> Recipe:
        # The float tier and the refinement's drop loss measure against each patch's HR crop: refuse, not skip.
        if self.calib.has_hr:
            return self
        what = "calib.tensors" if self.calib.tensors else "calib.degradation: none"
        if self.quant.float_tier.max_drop_db > 0:
            raise ValueError(
                f"quant.float_tier.max_drop_db > 0 needs HR images behind the calibration patches and {what} "
                "has none: set max_drop_db to 0, or calibrate on HR images (calib.degradation: bicubic)"
            )
        if self.quant.refine.steps and self.quant.refine.loss == "drop":
            raise ValueError(
                f"quant.refine.loss: drop weighs each patch by fp32's error against its HR crop and {what} has "
                "no HR images: use loss: psnr or l1, or calibrate on HR images (calib.degradation: bicubic)"
            )
        return self

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
