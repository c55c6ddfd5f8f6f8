"""Calibration cache: the activation ranges (and the bit map they were fitted at) of a build, as one JSON
file, like ModelOpt's ``--calibration_cache_path`` or TensorRT's calibration cache.

``cache_document(plan)`` writes the plan's ``bits`` and ``ranges`` (profile -> site -> interval), plus the
realized scale and zero point of each site in the default tier for people and other tools to read (they
follow from the ranges; on import only ranges and bits are used). ``read_cache`` checks every value;
``check_fits`` refuses a cache whose sites or bit-widths are not this build's, in one line.
A build that imports a cache skips observing the calibration patches and fitting ranges; every later
step (tiers, weight grids, refinement when the recipe asks for it) runs as usual.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srdeploy.calib.site_plan import ProfileSites
from srdeploy.errors import RecipeError
from srdeploy.quant.plan import ActRange, BitMap, QuantPlan

FORMAT = "srdeploy-calibration-cache"
VERSION = 1
_HINT = "write a new one with `srdeploy build --calibration-cache NEW.json` on this recipe and model"


@dataclass(frozen=True)
class CalibrationCache:
    path: Path
    model: Mapping[str, Any]
    bits: BitMap
    ranges: Mapping[str, Mapping[str, ActRange]]


def cache_document(plan: QuantPlan) -> dict[str, Any]:
    tier = next((t for t in plan.tiers if t.index == plan.default_tier), None)
    scales: dict[str, dict[str, Any]] = {}
    for p, specs in (tier.activations.items() if tier else ()):
        scales[p] = {s: _scale(q) for s, q in specs.items()}
    m = plan.model
    return dict(
        format=FORMAT,
        version=VERSION,
        model=dict(arch=m.arch, name=m.name, scale=m.scale),
        recipe=plan.provenance.recipe,
        bits={**asdict(plan.bits), "layer_offsets": dict(sorted(plan.bits.layer_offsets.items()))},
        ranges={p: {s: asdict(r) for s, r in sorted(rs.items())} for p, rs in sorted(plan.ranges.items())},
        default_tier_scales=scales,
    )


def _scale(spec: Any) -> dict[str, Any]:
    first = [float(np.asarray(v, dtype=np.float64).reshape(-1)[0]) for v in (spec.scale, spec.zero_point)]
    return dict(bits=spec.bits, scale=first[0], zero_point=int(first[1]))


def write_cache(path: Path, plan: QuantPlan) -> None:
    from srdeploy.fsutil import atomic_write_bytes

    atomic_write_bytes(Path(path), (json.dumps(cache_document(plan), indent=1) + "\n").encode())


def _bad(path: Path, what: str) -> RecipeError:
    return RecipeError(f"calibration cache {path}: {what}", _HINT)


def _range(path: Path, where: str, d: Any) -> ActRange:
    if not isinstance(d, Mapping):
        raise _bad(path, f"{where} is not an object")
    lo, hi, reuse = d.get("lo"), d.get("hi"), d.get("reuse")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (lo, hi)):
        raise _bad(path, f"{where}: lo and hi must be finite numbers")
    if lo > hi:
        raise _bad(path, f"{where}: the interval [{lo}, {hi}] is empty")
    if reuse is not None and not isinstance(reuse, str):
        raise _bad(path, f"{where}: reuse must be a site name")
    residual = bool(d.get("residual", False))
    return ActRange(float(lo), float(hi), nonnegative=bool(d.get("nonnegative", False)), reuse=reuse, residual=residual)


def _bits(path: Path, d: Any) -> BitMap:
    try:
        bits = BitMap(
            base=int(d["base"]),
            weight_bits=int(d["weight_bits"]),
            skip_bits=int(d["skip_bits"]),
            layer_offsets={str(k): int(v) for k, v in d["layer_offsets"].items()},
            tier_offsets=tuple(int(v) for v in d["tier_offsets"]),
            thresholds=tuple(float(v) for v in d["thresholds"]),
            statistic=str(d["statistic"]),
            float_residual_tiers=tuple(int(v) for v in d.get("float_residual_tiers", ())),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _bad(path, f"bits are malformed ({type(exc).__name__}: {exc})") from None
    if not bits.tier_offsets or len(bits.thresholds) != len(bits.tier_offsets) - 1:
        raise _bad(path, "bits: tier_offsets and thresholds do not match")
    if not all(2 <= b <= 8 for b in (bits.base, bits.weight_bits, bits.skip_bits)):
        raise _bad(path, "bits: base, weight_bits and skip_bits must lie in 2..8")
    if not all(0 <= t < len(bits.tier_offsets) for t in bits.float_residual_tiers):
        raise _bad(path, "bits: float_residual_tiers must name tiers of tier_offsets")
    return bits


def read_cache(path: Path) -> CalibrationCache:
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"calibration cache not found: {path}", "pass an existing cache file") from None
    except (OSError, ValueError) as exc:
        raise _bad(path, f"not readable JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _bad(path, f"not an srdeploy calibration cache (no \"format\": \"{FORMAT}\")")
    if doc.get("version") != VERSION:
        raise _bad(path, f"cache version {doc.get('version')} (this srdeploy reads {VERSION})")
    ranges = doc.get("ranges")
    if not isinstance(ranges, dict) or not all(isinstance(v, dict) for v in ranges.values()):
        raise _bad(path, "ranges must map profile -> site -> {lo, hi}")
    parsed = {p: {s: _range(path, f"{p}/{s}", r) for s, r in rs.items()} for p, rs in ranges.items()}
    model = doc.get("model") if isinstance(doc.get("model"), dict) else {}
    return CalibrationCache(path, model, _bits(path, doc.get("bits")), parsed)


def _listed(names: set[str]) -> str:
    shown = sorted(names)[:3]
    return ", ".join(shown) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")


def check_fits(cache: CalibrationCache, site_plan: Mapping[str, ProfileSites], q: Any, plan: QuantPlan) -> None:
    """One-line error unless ``cache`` covers exactly the sites of this build at the recipe's bit-widths."""
    want = dict(base=q.act_bits, weight_bits=q.weight_bits, skip_bits=q.skip_bits)
    got = dict(base=cache.bits.base, weight_bits=cache.bits.weight_bits, skip_bits=cache.bits.skip_bits)
    if want != got:
        raise _bad(cache.path, f"made for bits {got}, this recipe asks for {want}")
    if cache.model.get("scale") not in (None, plan.model.scale):
        raise _bad(cache.path, f"made for a x{cache.model.get('scale')} model, this one is x{plan.model.scale}")
    quantized = {x.weight for x in plan.layers if x.quantized}
    stray = set(cache.bits.layer_offsets) - quantized
    if stray:
        raise _bad(cache.path, f"bit offsets for layers this build does not quantize: {_listed(stray)}")
    for profile, ps in site_plan.items():
        have = cache.ranges.get(profile)
        if have is None:
            raise _bad(cache.path, f"has no ranges for profile {profile!r} (it has {sorted(cache.ranges)})")
        missing, unknown = set(ps.sites) - set(have), set(have) - set(ps.sites)
        if missing or unknown:
            parts = [f"missing {_listed(missing)}" if missing else "", f"unknown {_listed(unknown)}" if unknown else ""]
            what = "; ".join(p for p in parts if p)
            raise _bad(cache.path, f"{profile} layer names do not match this build: {what}")


def cache_options(cache: Path | None, load: Path | None) -> tuple[CalibrationCache | None, Path | None]:
    """``--calibration-cache PATH`` (import it when it exists, else export the build's ranges there) and
    ``--load-calibration-cache PATH`` (import only) -> (cache to import, path to export to). Checked before
    the build starts; an existing cache is never overwritten."""
    if cache is not None and load is not None:
        raise RecipeError(
            "--calibration-cache and --load-calibration-cache both given", "pass one (the first imports or exports)"
        )
    if load is not None:
        return read_cache(Path(load)), None
    if cache is None:
        return None, None
    path = Path(cache)
    if path.is_dir():
        raise RecipeError(f"--calibration-cache {path} is a folder", "pass a file name, e.g. calib_cache.json")
    if path.exists():
        return read_cache(path), None
    if not path.parent.is_dir():
        raise RecipeError(f"--calibration-cache {path}: folder {path.parent} does not exist", "create it first")
    return None, path
