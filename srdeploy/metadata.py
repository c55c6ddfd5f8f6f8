"""Range checks for a build folder's metadata (manifest, model.json, tiers.json, plan.json), on read.

A build folder is data from disk (a CI cache, a colleague, a download), so it is checked like a
recipe: a value no build writes (scale 0, a 12-bit grid, a NaN threshold, a path out of the folder)
fails naming the file and key, instead of a traceback deep in validation or a wrong picture. Unknown
keys are allowed (a newer srdeploy may add some). No torch import: the app runtime uses this.
"""

from __future__ import annotations

import json
import math
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from srdeploy.errors import BuildFolderError, SrdeployError

PROFILES = ("trt", "ort")
MAX_SCALE = 16
REBUILD = "rebuild the folder: srdeploy build --recipe <its recipe.yaml>"


def _relative(p: str) -> str:
    parts = PurePosixPath(p).parts
    if not p or PurePosixPath(p).is_absolute() or ".." in parts or "\\" in p:
        raise ValueError(f"{p!r} is not a path inside the folder")
    return p


RelPath = Annotated[str, AfterValidator(_relative)]
Scale = Annotated[int, Field(ge=1, le=MAX_SCALE)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False, strict=True)


class ManifestDoc(_Doc):
    format_version: int
    srdeploy_version: str
    files: dict[RelPath, Sha256]
    kind: Literal["build", "validate-report"] = "build"


class SizeRulesDoc(_Doc):
    """srdeploy/size_rules.py: the input sizes the graphs accept (absent: every size, any batch)."""

    multiple: int = Field(1, ge=1, le=1024)
    minimum: int = Field(1, ge=1, le=4096)
    pad_mode: Literal["reflect", "constant"] = "reflect"
    batch: int | None = Field(None, ge=1, le=1024)

    def rules(self) -> Any:
        from srdeploy.size_rules import SizeRules

        return SizeRules(self.multiple, self.minimum, self.pad_mode, self.batch)


class ModelDoc(_Doc):
    arch: str = Field(min_length=1)
    name: str = ""
    scale: Scale
    hparams: dict[str, Any]
    structure: dict[str, Any] = {}
    size_rules: SizeRulesDoc | None = None
    deploy_folds: list[Literal["output_shuffle"]] = []  # structural folds of the deploy form (deploy_form.py)

    @model_validator(mode="after")
    def _consistent(self) -> ModelDoc:
        if "scale" in self.hparams and self.hparams["scale"] != self.scale:
            raise ValueError(f"hparams.scale {self.hparams['scale']!r} differs from scale {self.scale}")
        rgb = self.hparams.get("rgb_range")
        if rgb is not None and not (isinstance(rgb, int | float) and math.isfinite(rgb) and rgb > 0):
            raise ValueError(f"hparams.rgb_range {rgb!r} must be a finite number > 0")
        return self


class SelectorDoc(_Doc):
    statistic: str
    thresholds: list[float]
    tiers: list[Annotated[int, Field(ge=0)]]

    @model_validator(mode="after")
    def _shape(self) -> SelectorDoc:
        if len(self.tiers) != len(self.thresholds) + 1:
            raise ValueError(f"{len(self.thresholds)} thresholds need {len(self.thresholds) + 1} tiers")
        if any(b < a for a, b in zip(self.thresholds, self.thresholds[1:], strict=False)):
            raise ValueError("thresholds must be ascending")
        return self


class TierFiles(_Doc):
    index: int = Field(ge=0)
    name: str
    fab: float | None = Field(None, ge=0, le=32)
    # A hand-written tiers.json may point anywhere; in a build folder each file must be in the manifest.
    files: dict[str, Annotated[str, Field(min_length=1)]]  # profile -> file

    @field_validator("files")
    @classmethod
    def _known_profiles(cls, v: dict[str, str]) -> dict[str, str]:
        from srdeploy.profiles import PROFILES

        unknown = sorted(set(v) - set(PROFILES))
        if unknown:
            raise ValueError(f"unknown profile(s) {unknown}; known: {', '.join(PROFILES)}")
        return v


class TiersDoc(_Doc):
    scale: Scale
    size_rules: SizeRulesDoc | None = None
    default_tier: int | None = Field(None, ge=0)
    selector: SelectorDoc | None = None
    tiers: list[TierFiles] = Field(min_length=1)

    @model_validator(mode="after")
    def _tiers_known(self) -> TiersDoc:
        _check_tier_refs([t.index for t in self.tiers], self.default_tier, self.selector)
        return self


def _check_tier_refs(indices: list[int], default: int | None, selector: SelectorDoc | None) -> None:
    if len(set(indices)) != len(indices):
        raise ValueError(f"tier indices {indices} repeat")
    if default is not None and default not in indices:
        raise ValueError(f"default_tier {default} is not one of the tiers {indices}")
    if selector is not None and not set(selector.tiers) <= set(indices):
        raise ValueError(f"selector routes to tiers {sorted(set(selector.tiers) - set(indices))} that do not exist")


def qrange(bits: int, signed: bool, narrow: bool = False) -> tuple[int, int]:
    """Integer range of a grid (same rule as quant/grid.py, without importing torch)."""
    if signed:
        m = 2 ** (bits - 1) - 1
        return (-m if narrow else -m - 1), m
    return 0, 2**bits - 1


def read_json(path: Path, error: type[SrdeployError], what: str) -> Any:
    """Parse a JSON file, raising ``error`` with the file named for every way it can be unreadable."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise error(f"{what} {path} is missing", REBUILD) from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a folder, not a file", REBUILD) from None
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text (bad byte at offset {exc.start})", REBUILD) from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}", "check the file's permissions") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise error(f"{what} {path} is not valid JSON ({exc})", REBUILD) from None


def _validated(schema: type[_Doc], data: Any, path: Path, error: type[SrdeployError]) -> Any:
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise error(f"{path} has invalid values: {'; '.join(problems[:3])}{more}", REBUILD) from None


def is_srdeploy_manifest(data: Any) -> bool:
    try:
        ManifestDoc.model_validate(data)
    except ValidationError:
        return False
    return True


def check_manifest(data: Any, path: Path) -> ManifestDoc:
    return _validated(ManifestDoc, data, path, BuildFolderError)


def check_model_doc(data: Any, path: Path) -> ModelDoc:
    return _validated(ModelDoc, data, path, BuildFolderError)


def check_tiers_doc(data: Any, path: Path) -> TiersDoc:
    return _validated(TiersDoc, data, path, BuildFolderError)
