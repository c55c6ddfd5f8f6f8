"""Reading a plan.json/plan.npz pair with every value checked (srdeploy/metadata.py for the JSON).

The arrays matter as much as the JSON: a scale of 0 or NaN in plan.npz gives a division by zero in
the simulation and a graph that outputs garbage, so scales must be finite and > 0, zero points on
their grid, and every array a spec or mask names must exist with the size its layer implies.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from srdeploy.errors import BuildFolderError, PlanError
from srdeploy.metadata import PlanDoc, SpecDoc, check_plan_doc, qrange, read_json

PLAN_HINT = "the plan.json / plan.npz pair is incomplete or corrupt: rebuild the folder"


def _check_spec(spec: SpecDoc, arrays: Mapping[str, np.ndarray], where: str, channels: int | None) -> None:
    scale = arrays.get(f"{spec.array}/scale")
    zero = arrays.get(f"{spec.array}/zero_point")
    if scale is None or zero is None:
        raise PlanError(f"{where}: plan.npz lacks the arrays of {spec.array!r}", PLAN_HINT)
    scale, zero = np.asarray(scale, dtype=np.float64), np.asarray(zero)
    if scale.size == 0 or not np.all(np.isfinite(scale)) or not np.all(scale > 0):
        raise PlanError(f"{where}: scales of {spec.array!r} must be finite and > 0", PLAN_HINT)
    expected = 1 if spec.axis is None else channels
    if expected is not None and scale.size != expected:
        raise PlanError(f"{where}: {spec.array!r} has {scale.size} scale(s), expected {expected}", PLAN_HINT)
    if zero.shape != scale.shape:
        raise PlanError(f"{where}: {spec.array!r} has {zero.size} zero point(s) for {scale.size} scale(s)", PLAN_HINT)
    lo, hi = qrange(spec.bits, spec.signed, spec.narrow)
    if np.any(zero < lo) or np.any(zero > hi):
        raise PlanError(f"{where}: zero points of {spec.array!r} do not fit the {spec.bits}-bit grid", PLAN_HINT)


def check_plan_arrays(doc: PlanDoc, arrays: Mapping[str, np.ndarray], path: Path) -> None:
    channels = {x.weight: x.out_channels for x in doc.layers}
    for name, spec in doc.weights.items():
        _check_spec(spec, arrays, f"{path}: weights.{name}", channels[name])
    for tier in doc.tiers:
        for profile, sites in tier.activations.items():
            for site, spec in sites.items():
                _check_spec(spec, arrays, f"{path}: tier {tier.index} {profile} {site}", None)
    for name, mask in doc.masks.items():
        packed = arrays.get(mask.array)
        if packed is None or np.asarray(packed).size * 8 < int(np.prod(mask.shape)):
            raise PlanError(f"{path}: mask of {name} is missing or shorter than its shape {mask.shape}", PLAN_HINT)
        if mask.n > mask.m:
            raise PlanError(f"{path}: mask of {name} keeps {mask.n} of every {mask.m} (n > m)", PLAN_HINT)
        for key in (mask.bias, mask.weight):
            if key is not None and (key not in arrays or not np.all(np.isfinite(arrays[key]))):
                raise PlanError(f"{path}: mask of {name}: array {key!r} is missing or not finite", PLAN_HINT)


def load_plan_checked(path: str | os.PathLike[str]) -> Any:
    """``quant.plan.load_plan`` with the JSON range-checked and the arrays validated first."""
    from srdeploy.quant.plan import PLAN_VERSION, plan_from_json

    path = Path(path)
    if path.is_dir():
        raise PlanError(f"{path} is a folder", "pass a build folder or its plan.json")
    data = read_json(path, PlanError, "plan")
    if not isinstance(data, dict) or data.get("version") != PLAN_VERSION:
        version = data.get("version") if isinstance(data, dict) else None
        raise PlanError(
            f"{path}: plan version {version!r} is not supported (this srdeploy reads version {PLAN_VERSION})",
            "rebuild with this srdeploy version",
        )
    doc = check_plan_doc(data, path)
    npz = path.with_name(doc.arrays)
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise PlanError(f"cannot read {npz}: {exc}", PLAN_HINT) from None
    check_plan_arrays(doc, arrays, path)
    try:
        return plan_from_json(data, arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanError(f"{path} does not describe a plan ({type(exc).__name__}: {exc})", PLAN_HINT) from None


def check_plan_fits(plan: Any, module: Any, origin: Path) -> None:
    """Every conv the plan names is a parameter of the deployed model, with the shape it records."""
    params = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    for x in plan.layers:
        shape = params.get(x.weight)
        if shape is None:
            raise BuildFolderError(f"{origin}: plan layer {x.weight} is not in model.safetensors", "rebuild the folder")
        if shape[0] != x.out_channels:
            raise BuildFolderError(
                f"{origin}: plan layer {x.weight} has {x.out_channels} output channels, the model {shape[0]}",
                "rebuild the folder",
            )
    for name, mask in plan.masks.items():
        if tuple(mask.keep.shape) != params.get(name):
            raise BuildFolderError(f"{origin}: mask of {name} does not match the weight's shape", "rebuild the folder")
