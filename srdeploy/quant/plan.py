"""QuantPlan: everything a build decided, as plain data (JSON + .npz), diffable and reloadable.

For each conv (keyed by weight name): role, whether and why it is quantized, its weight spec and
N:M mask; per precision tier and per backend profile, the activation spec of every site; the
selector that routes an image or tile to a tier.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from srdeploy.errors import PlanError
from srdeploy.fsutil import atomic_write_bytes
from srdeploy.quant.spec import QuantSpec

PLAN_VERSION = 1
PROFILES = ("trt", "ort")


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
    """Keep-mask of a conv weight (True = kept), at most ``n`` of every ``m`` input channels
    (sparsity/nm.py). ``bias``: the conv's bias re-fitted after masking (bias correction or re-fit),
    if any; ``weight``: the kept weights re-fitted after pruning (zeros where pruned), if any."""

    n: int
    m: int
    keep: np.ndarray
    bias: np.ndarray | None = None
    weight: np.ndarray | None = None

    def pruned(self, w: np.ndarray) -> np.ndarray:
        """The conv weight every execution uses: the re-fitted one, else ``w`` with the mask applied."""
        return w * self.keep if self.weight is None else np.asarray(self.weight, dtype=np.float32)


@dataclass(frozen=True)
class Tier:
    index: int
    name: str
    activations: Mapping[str, Mapping[str, QuantSpec]]  # profile -> site -> spec

    def sites(self, profile: str) -> Mapping[str, QuantSpec]:
        if profile not in self.activations:
            raise PlanError(f"tier {self.name} has no '{profile}' profile", f"profiles: {sorted(self.activations)}")
        return self.activations[profile]


@dataclass(frozen=True)
class Selector:
    """Routes an LR image/tile to a tier by a complexity statistic (AdaBM's image-to-bit map).

    ``thresholds`` ascending; value < thresholds[0] -> tiers[0], ... , >= thresholds[-1] -> tiers[-1].
    """

    statistic: str
    thresholds: tuple[float, ...]
    tiers: tuple[int, ...]

    def route(self, value: float) -> int:
        return self.tiers[int(np.searchsorted(np.asarray(self.thresholds), value, side="right"))]


@dataclass(frozen=True)
class QuantPlan:
    model: Mapping[str, Any]
    layers: tuple[LayerInfo, ...]
    weights: Mapping[str, QuantSpec]
    tiers: tuple[Tier, ...]
    masks: Mapping[str, NMMask] = field(default_factory=dict)
    selector: Selector | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
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
        return int(self.meta.get("default_tier", self.tiers[0].index))

    def with_meta(self, **kw: Any) -> QuantPlan:
        return replace(self, meta={**self.meta, **kw})


# --------------------------------------------------------------------------- serialisation


def _spec_to_json(spec: QuantSpec, key: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    arrays[f"{key}/scale"] = np.asarray(spec.scale, dtype=np.float32)
    arrays[f"{key}/zero_point"] = np.asarray(spec.zero_point, dtype=np.int32)
    out: dict[str, Any] = dict(
        bits=spec.bits, signed=spec.signed, narrow=spec.narrow, axis=spec.axis, lo=spec.lo, hi=spec.hi, array=key
    )
    if spec.axis is None:
        out.update(scale=float(spec.scale), zero_point=int(spec.zero_point))
    return out


def _spec_from_json(d: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> QuantSpec:
    key = d["array"]
    return QuantSpec(
        bits=int(d["bits"]),
        signed=bool(d["signed"]),
        scale=np.asarray(arrays[f"{key}/scale"], dtype=np.float32),
        zero_point=np.asarray(arrays[f"{key}/zero_point"], dtype=np.int32),
        axis=d["axis"],
        lo=float(d["lo"]),
        hi=float(d["hi"]),
        narrow=bool(d.get("narrow", False)),
    )


def plan_to_json(plan: QuantPlan) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    doc: dict[str, Any] = dict(
        version=plan.version,
        model=dict(plan.model),
        meta=dict(plan.meta),
        layers=[
            dict(
                weight=x.weight,
                module=x.module,
                role=x.role,
                quantized=x.quantized,
                reason=x.reason,
                in_channels=x.in_channels,
                out_channels=x.out_channels,
                kernel=list(x.kernel),
                groups=x.groups,
                macs_per_lr_pixel=x.macs_per_lr_pixel,
            )
            for x in plan.layers
        ],
        weights={k: _spec_to_json(plan.weights[k], f"w/{k}", arrays) for k in sorted(plan.weights)},
        masks={},
        tiers=[],
        selector=None,
    )
    for k in sorted(plan.masks):
        mask = plan.masks[k]
        arrays[f"mask/{k}"] = np.packbits(mask.keep.astype(bool).ravel())
        doc["masks"][k] = dict(
            n=mask.n,
            m=mask.m,
            shape=list(mask.keep.shape),
            array=f"mask/{k}",
            density=float(mask.keep.mean()),
            bias=None,
        )
        if mask.bias is not None:
            arrays[f"mask_bias/{k}"] = np.asarray(mask.bias, dtype=np.float32)
            doc["masks"][k]["bias"] = f"mask_bias/{k}"
        doc["masks"][k]["weight"] = None
        if mask.weight is not None:
            arrays[f"mask_weight/{k}"] = np.asarray(mask.weight, dtype=np.float32)
            doc["masks"][k]["weight"] = f"mask_weight/{k}"
    for t in plan.tiers:
        acts = {
            p: {s: _spec_to_json(t.activations[p][s], f"a/{t.index}/{p}/{s}", arrays) for s in sorted(t.activations[p])}
            for p in sorted(t.activations)
        }
        doc["tiers"].append(dict(index=t.index, name=t.name, activations=acts))
    if plan.selector is not None:
        doc["selector"] = dict(
            statistic=plan.selector.statistic,
            thresholds=list(plan.selector.thresholds),
            tiers=list(plan.selector.tiers),
        )
    return doc, arrays


def plan_from_json(doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> QuantPlan:
    if doc.get("version") != PLAN_VERSION:
        raise PlanError(
            f"plan version {doc.get('version')} is not supported (this srdeploy reads version {PLAN_VERSION})",
            "rebuild with this srdeploy version",
        )
    layers = tuple(LayerInfo(**{**x, "kernel": tuple(x["kernel"])}) for x in doc["layers"])
    weights = {k: _spec_from_json(v, arrays) for k, v in doc["weights"].items()}
    masks = {}
    for k, v in doc["masks"].items():
        shape = tuple(v["shape"])
        bits = np.unpackbits(np.asarray(arrays[v["array"]]))[: int(np.prod(shape))]
        bias = np.asarray(arrays[v["bias"]], dtype=np.float32) if v.get("bias") else None
        weight = np.asarray(arrays[v["weight"]], dtype=np.float32) if v.get("weight") else None
        masks[k] = NMMask(n=int(v["n"]), m=int(v["m"]), keep=bits.reshape(shape).astype(bool), bias=bias, weight=weight)
    tiers = tuple(
        Tier(
            index=int(t["index"]),
            name=t["name"],
            activations={
                p: {s: _spec_from_json(d, arrays) for s, d in sites.items()} for p, sites in t["activations"].items()
            },
        )
        for t in doc["tiers"]
    )
    sel = doc.get("selector")
    selector = (
        Selector(statistic=sel["statistic"], thresholds=tuple(sel["thresholds"]), tiers=tuple(sel["tiers"]))
        if sel
        else None
    )
    return QuantPlan(
        model=doc["model"],
        layers=layers,
        weights=weights,
        tiers=tiers,
        masks=masks,
        selector=selector,
        meta=doc.get("meta", {}),
        version=int(doc["version"]),
    )


def save_plan(plan: QuantPlan, path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``plan.json`` and ``plan.npz`` beside it (deterministic bytes, atomic)."""
    path = Path(path)
    doc, arrays = plan_to_json(plan)
    npz_path = path.with_suffix(".npz")
    doc["arrays"] = npz_path.name
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    buf = io.BytesIO()
    # np.savez writes zip entries with a fixed timestamp, so equal arrays give equal bytes.
    np.savez_compressed(buf, **{k: arrays[k] for k in sorted(arrays)})
    atomic_write_bytes(path, text.encode())
    atomic_write_bytes(npz_path, buf.getvalue())
    return path, npz_path


def load_plan(path: str | os.PathLike[str]) -> QuantPlan:
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"plan not found: {path}", "point to the plan.json of a build folder")
    try:
        doc = json.loads(path.read_text())
        with np.load(path.with_name(doc.get("arrays", path.with_suffix(".npz").name))) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError) as exc:
        raise PlanError(
            f"cannot read plan {path}: {exc}", "the plan.json / plan.npz pair is incomplete or corrupt"
        ) from exc
    return plan_from_json(doc, arrays)
