"""QuantPlan <-> ``plan.json`` + ``plan.npz``: deterministic bytes, validated on read.

Arrays (scales, zero points, masks, re-fitted weights, equalization scales, fold constants) live in the
.npz under keys named in the JSON; everything else is in the JSON, so two plans diff as text.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from srdeploy.errors import PlanError
from srdeploy.fsutil import atomic_write_bytes
from srdeploy.quant.plan import (
    PLAN_VERSION,
    ActRange,
    BitMap,
    ChannelGroup,
    ChannelPruning,
    Emission,
    LayerInfo,
    ModelRef,
    NMMask,
    Provenance,
    QuantPlan,
    Tier,
)
from srdeploy.quant.spec import QuantSpec
from srdeploy.quant.spec_io import spec_from_json, spec_to_json

_BIT_TUPLES = ("tier_offsets", "thresholds", "float_residual_tiers")  # BitMap fields stored as JSON lists


def _array(arrays: dict[str, np.ndarray], key: str, value: np.ndarray | None, dtype: Any = np.float32) -> str | None:
    if value is None:
        return None
    arrays[key] = np.asarray(value, dtype=dtype)
    return key


def _mask_to_json(k: str, mask: NMMask, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    arrays[f"mask/{k}"] = np.packbits(mask.keep.astype(bool).ravel())
    return dict(
        n=mask.n,
        m=mask.m,
        shape=list(mask.keep.shape),
        array=f"mask/{k}",
        density=float(mask.keep.mean()),
        fit=mask.fit,
        weight=_array(arrays, f"mask_weight/{k}", mask.weight),
        bias=_array(arrays, f"mask_bias/{k}", mask.bias),
    )


def plan_to_json(plan: QuantPlan) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    structure = [
        dict(
            producers=list(g.producers),
            consumers=list(g.consumers),
            keep=list(g.keep),
            channels=g.channels,
            per_channel=list(g.per_channel),
            constants=_array(arrays, f"structure/{i}", g.constants),
            consumer_weight=_array(arrays, f"structure_weight/{i}", g.consumer_weight),
            consumer_bias=_array(arrays, f"structure_bias/{i}", g.consumer_bias),
        )
        for i, g in enumerate(plan.structure)
    ]
    equalization = [
        dict(producers=list(g.producers), consumers=list(g.consumers), scale=_array(arrays, f"equalize/{i}", g.scale))
        for i, g in enumerate(plan.equalization)
    ]
    doc: dict[str, Any] = dict(
        version=plan.version,
        model=asdict(plan.model),
        provenance=asdict(plan.provenance),
        layers=[{**asdict(x), "kernel": list(x.kernel)} for x in plan.layers],
        structure=structure,
        masks={k: _mask_to_json(k, plan.masks[k], arrays) for k in sorted(plan.masks)},
        equalization=equalization,
        weights={k: spec_to_json(plan.weights[k], f"w/{k}", arrays) for k in sorted(plan.weights)},
        bits={**asdict(plan.bits), "layer_offsets": dict(sorted(plan.bits.layer_offsets.items()))},
        ranges={p: {s: asdict(r) for s, r in sorted(sites.items())} for p, sites in sorted(plan.ranges.items())},
        tiers=[_tier_to_json(t, arrays) for t in plan.tiers],
        emission={p: asdict(e) for p, e in sorted(plan.emission.items())},
    )
    return doc, arrays


def _tier_to_json(t: Tier, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    acts = {
        p: {s: spec_to_json(t.activations[p][s], f"a/{t.index}/{p}/{s}", arrays) for s in sorted(t.activations[p])}
        for p in sorted(t.activations)
    }
    return dict(index=t.index, name=t.name, activations=acts, quantized=t.quantized)


def _tier_from_json(t: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Tier:
    acts = {p: {s: spec_from_json(d, arrays) for s, d in sites.items()} for p, sites in t["activations"].items()}
    return Tier(int(t["index"]), str(t["name"]), acts, bool(t.get("quantized", True)))


def _opt(arrays: Mapping[str, np.ndarray], key: str | None) -> np.ndarray | None:
    return None if key is None else np.asarray(arrays[key], dtype=np.float32)


def _mask_from_json(v: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> NMMask:
    shape = tuple(int(s) for s in v["shape"])
    bits = np.unpackbits(np.asarray(arrays[v["array"]]))[: int(np.prod(shape))]
    return NMMask(
        n=int(v["n"]),
        m=int(v["m"]),
        keep=bits.reshape(shape).astype(bool),
        weight=_opt(arrays, v.get("weight")),
        bias=_opt(arrays, v.get("bias")),
        fit=str(v.get("fit", "magnitude")),
    )


def plan_from_json(doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> QuantPlan:
    if doc.get("version") != PLAN_VERSION:
        raise PlanError(
            f"plan version {doc.get('version')} is not supported (this srdeploy reads version {PLAN_VERSION})",
            "rebuild with this srdeploy version",
        )
    plan = QuantPlan(
        model=ModelRef(**doc["model"]),
        layers=tuple(LayerInfo(**{**x, "kernel": tuple(x["kernel"])}) for x in doc["layers"]),
        structure=tuple(
            ChannelPruning(
                producers=tuple(g["producers"]),
                consumers=tuple(g["consumers"]),
                keep=tuple(int(i) for i in g["keep"]),
                channels=int(g["channels"]),
                constants=_opt(arrays, g.get("constants")),
                per_channel=tuple(g.get("per_channel", ())),
                consumer_weight=_opt(arrays, g.get("consumer_weight")),
                consumer_bias=_opt(arrays, g.get("consumer_bias")),
            )
            for g in doc["structure"]
        ),
        masks={k: _mask_from_json(v, arrays) for k, v in doc["masks"].items()},
        equalization=tuple(
            ChannelGroup(tuple(g["producers"]), tuple(g["consumers"]), np.asarray(arrays[g["scale"]], np.float32))
            for g in doc["equalization"]
        ),
        weights={k: spec_from_json(v, arrays) for k, v in doc["weights"].items()},
        bits=BitMap(**{**doc["bits"], **{k: tuple(doc["bits"].get(k, ())) for k in _BIT_TUPLES}}),
        ranges={p: {s: ActRange(**r) for s, r in sites.items()} for p, sites in doc["ranges"].items()},
        tiers=tuple(_tier_from_json(t, arrays) for t in doc["tiers"]),
        emission={p: Emission(**e) for p, e in doc["emission"].items()},
        provenance=Provenance(**doc["provenance"]),
        version=int(doc["version"]),
    )
    check_plan(plan)
    return plan


def check_plan(plan: QuantPlan) -> None:
    """Range checks on every value a plan feeds into an emitted graph (a hand-edited plan gets a clear error)."""
    from srdeploy.profiles import PROFILES

    if plan.model.scale < 1:
        raise PlanError(f"plan: model scale {plan.model.scale} is not >= 1", "rebuild the folder")
    profiles = set(plan.emission) | {p for t in plan.tiers for p in t.activations}
    unknown = sorted(profiles - set(PROFILES))
    if unknown:
        raise PlanError(f"plan: unknown profile(s) {unknown}", f"known profiles: {', '.join(PROFILES)}")
    layers = {x.weight: x for x in plan.layers}
    for name in sorted((set(plan.weights) | set(plan.masks)) - set(layers)):
        raise PlanError(f"plan: {name} names no layer of the plan", "rebuild the folder")
    for name, spec in plan.weights.items():
        if spec.axis is not None and spec.scale.size != layers[name].out_channels:
            raise PlanError(
                f"plan: weight {name} has {spec.scale.size} scale(s), expected {layers[name].out_channels}",
                "rebuild the folder",
            )
    for name, mask in plan.masks.items():
        fitted = [a for a in (mask.weight, mask.bias) if a is not None]
        if mask.n > mask.m or any(not np.all(np.isfinite(a)) for a in fitted):
            raise PlanError(f"plan: mask of {name} is not a valid N:M mask with finite weights", "rebuild the folder")
    specs = [(f"weight {k}", s) for k, s in plan.weights.items()]
    specs += [
        (f"tier {t.index} {p} {s}", spec) for t in plan.tiers for p, m in t.activations.items() for s, spec in m.items()
    ]
    for where, spec in specs:
        _check_spec(where, spec)
    for g in plan.structure:
        _check_pruning(g)
    for g in plan.equalization:
        if not np.all(np.isfinite(g.scale)) or np.any(g.scale <= 0):
            raise PlanError(
                f"plan: equalization scale of {g.producers[:1]} is not finite and > 0", "rebuild the folder"
            )
    fb = plan.bits.float_below
    if not all(math.isfinite(t) for t in (*plan.bits.thresholds, *(() if fb is None else (fb,)))):
        raise PlanError("plan: a tier threshold is not finite", "rebuild the folder")
    if [t.index for t in plan.tiers if not t.quantized] != ([] if fb is None else [plan.bits.float_tier]):
        raise PlanError("plan: the float tier does not match bits.float_below", "rebuild the folder")
    if not all(0 <= t < len(plan.bits.tier_offsets) for t in plan.bits.float_residual_tiers):
        raise PlanError("plan: bits.float_residual_tiers names a tier that is not a bit tier", "rebuild the folder")


def _check_pruning(g: ChannelPruning) -> None:
    where = f"plan: channel pruning of {g.producers[:1]}"
    if not g.keep or len(set(g.keep)) != len(g.keep) or min(g.keep) < 0 or max(g.keep) >= g.channels:
        raise PlanError(f"{where} keeps {len(g.keep)} channel(s), not distinct ones of 0..{g.channels - 1}", "rebuild")
    arrays = [a for a in (g.constants, g.consumer_weight, g.consumer_bias) if a is not None]
    if any(not np.all(np.isfinite(a)) for a in arrays):
        raise PlanError(f"{where} has non-finite constants or re-fitted weights", "rebuild the folder")
    if g.consumer_weight is not None and (len(g.consumers) != 1 or g.consumer_weight.ndim != 4):
        raise PlanError(f"{where}: a re-fitted consumer weight needs one 4-D consumer", "rebuild the folder")


def _check_spec(where: str, spec: QuantSpec) -> None:
    if not 2 <= spec.bits <= 8:
        raise PlanError(f"plan: {where} has {spec.bits} bits (allowed: 2 to 8)", "rebuild the folder")
    if not np.all(np.isfinite(spec.scale)) or np.any(spec.scale <= 0):
        raise PlanError(f"plan: {where}: scales must be finite and > 0", "rebuild the folder")
    if spec.zero_point.shape != spec.scale.shape:
        raise PlanError(
            f"plan: {where} has {spec.zero_point.size} zero point(s) for {spec.scale.size} scales", "rebuild"
        )
    if np.any(spec.zero_point < spec.qmin) or np.any(spec.zero_point > spec.qmax):
        raise PlanError(f"plan: {where}: zero points do not fit the {spec.bits}-bit grid", "rebuild the folder")


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
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("the top level is not an object")
        arrays_name = str(doc.get("arrays", path.with_suffix(".npz").name))
        if Path(arrays_name).name != arrays_name:
            raise PlanError(f"plan: arrays file {arrays_name!r} is not beside it", "rebuild the folder")
        with np.load(path.with_name(arrays_name), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return plan_from_json(doc, arrays)
    except PlanError as exc:
        raise PlanError(exc.problem.replace("plan:", f"{path}:", 1), exc.hint) from None
    except OSError as exc:
        raise PlanError(
            f"cannot read plan {path}: {type(exc).__name__}: {str(exc)[:200]}",
            "the plan.json / plan.npz pair is incomplete; rebuild it",
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        what = f"missing key {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {str(exc)[:200]}"
        raise PlanError(
            f"{path} does not describe a plan ({what})",
            "the plan.json / plan.npz pair is corrupt or of another srdeploy version; rebuild it",
        ) from None


def check_plan_fits(plan: QuantPlan, module: Any, origin: Path) -> None:
    """Every conv the plan names is a parameter of the (as trained) model, with the shape it records; masks
    fit the convs they mask once the plan's channel surgery is applied."""
    from srdeploy.errors import BuildFolderError
    from srdeploy.quant.apply import apply_plan

    deployed = apply_plan(module, plan, masks=False, equalization=False)
    params = {k: tuple(v.shape) for k, v in deployed.state_dict().items()}
    for x in plan.layers:
        shape = params.get(x.weight)
        if shape is None:
            raise BuildFolderError(f"{origin}: plan layer {x.weight} is not in the model", "rebuild the folder")
        if shape[0] != x.out_channels:
            raise BuildFolderError(
                f"{origin}: plan layer {x.weight} has {x.out_channels} output channels, the model {shape[0]}",
                "rebuild the folder",
            )
    for name, mask in plan.masks.items():
        if tuple(mask.keep.shape) != params.get(name):
            raise BuildFolderError(f"{origin}: mask of {name} does not match the weight's shape", "rebuild the folder")
