"""trtexec spellings for the recipe's ``tensorrt`` section, so TensorRT users can write what they know.

- shapes: ``input:1x3x64x64`` (or ``1x3x64x64``) for ``min_shape`` / ``opt_shape`` / ``max_shape``, and the
  keys ``minShapes`` / ``optShapes`` / ``maxShapes``; the recipe keeps (N, H, W) of the LR input;
- ``memPoolSize: workspace:4096M`` (trtexec's units: a bare number is MiB; K, M, G suffixes) -> ``workspace_mb``;
- ``hardwareCompatibilityLevel: none | ampere+ | sameComputeCapability`` -> ``hardware_compatibility``;
- ``versionCompatible`` -> ``version_compatible``.
Pure parsing (no TensorRT, no torch): errors are ValueErrors the recipe turns into one line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

INPUT_NAME = "input"  # the exported graph's input (srdeploy/export.py INPUT_NAME)
CHANNELS = 3
KEY_ALIASES = {
    "minShapes": "min_shape",
    "optShapes": "opt_shape",
    "maxShapes": "max_shape",
    "memPoolSize": "workspace_mb",
    "hardwareCompatibilityLevel": "hardware_compatibility",
    "versionCompatible": "version_compatible",
}
HARDWARE_ALIASES = {"ampere+": "ampere_plus", "sameComputeCapability": "same_compute_capability"}
_UNITS = {"": 1.0, "K": 1 / 1024, "M": 1.0, "G": 1024.0}
_SHAPE_EXAMPLE = f"write {INPUT_NAME}:1x3x64x64 (N x C x H x W) or [1, 64, 64] (N, H, W)"


def parse_shape(value: Any) -> Any:
    """``input:NxCxHxW`` or ``NxCxHxW`` -> (N, H, W); anything else is left for the schema to check."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    name, sep, dims = text.rpartition(":")
    if sep and name != INPUT_NAME:
        raise ValueError(f"{value!r}: the model's input is called {INPUT_NAME!r}, not {name!r}; {_SHAPE_EXAMPLE}")
    if not re.fullmatch(r"\d+(x\d+)*", dims):
        raise ValueError(f"{value!r} is not a trtexec shape; {_SHAPE_EXAMPLE}")
    n = [int(d) for d in dims.split("x")]
    if len(n) != 4:
        raise ValueError(f"{value!r} has {len(n)} dimensions, the input has 4 (N x C x H x W); {_SHAPE_EXAMPLE}")
    if n[1] != CHANNELS:
        raise ValueError(f"{value!r}: C must be {CHANNELS} (RGB input); {_SHAPE_EXAMPLE}")
    return (n[0], n[2], n[3])


def parse_mem_pool(value: Any) -> Any:
    """``workspace:4096M`` / ``workspace:4G`` / ``workspace:4096`` (MiB) -> MiB; a plain number is MiB."""
    if not isinstance(value, str):
        return value
    pools = [p.strip() for p in value.split(",") if p.strip()]
    sizes = {}
    for pool in pools:
        name, sep, size = pool.partition(":")
        m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]?)", size.strip()) if sep else None
        if m is None:
            raise ValueError(f"{pool!r} is not a trtexec memory pool; write workspace:4096M (K, M or G)")
        if name.strip() != "workspace":
            raise ValueError(f"memory pool {name.strip()!r} is not configurable here; only workspace:<size> is")
        sizes[name.strip()] = float(m.group(1)) * _UNITS[m.group(2)]
    if "workspace" not in sizes:
        raise ValueError(f"{value!r} sets no pool; write workspace:4096M")
    mib = sizes["workspace"]
    if mib != int(mib):
        raise ValueError(f"{value!r}: the workspace must be a whole number of MiB")
    return int(mib)


def translate_keys(data: Any) -> Any:
    """The tensorrt section with trtexec keys renamed to the recipe's (both spellings at once is an error)."""
    if not isinstance(data, Mapping):
        return data
    out = dict(data)
    for alias, key in KEY_ALIASES.items():
        if alias not in out:
            continue
        if key in out:
            raise ValueError(f"both {alias} and {key} are set; keep one")
        out[key] = out.pop(alias)
    if "workspace_mb" in out:
        out["workspace_mb"] = parse_mem_pool(out["workspace_mb"])
    level = out.get("hardware_compatibility")
    if isinstance(level, str):
        out["hardware_compatibility"] = HARDWARE_ALIASES.get(level, level)
    return out
