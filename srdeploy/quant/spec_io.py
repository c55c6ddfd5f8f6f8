"""QuantSpec <-> JSON (scalars) + named arrays (scales, zero points), shared by plans and calibration caches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from srdeploy.quant.spec import QuantSpec


def spec_to_json(spec: QuantSpec, key: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    arrays[f"{key}/scale"] = np.asarray(spec.scale, dtype=np.float32)
    arrays[f"{key}/zero_point"] = np.asarray(spec.zero_point, dtype=np.int32)
    out: dict[str, Any] = dict(
        bits=spec.bits, signed=spec.signed, narrow=spec.narrow, axis=spec.axis, lo=spec.lo, hi=spec.hi, array=key
    )
    if spec.axis is None:
        out.update(scale=float(spec.scale), zero_point=int(spec.zero_point))
    return out


def spec_from_json(d: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> QuantSpec:
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
