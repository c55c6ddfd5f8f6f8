"""The profile registry: one module per deployment target (Q/DQ layout, float dtype, opset, backends).

Code outside this package asks a profile what to do instead of testing its name.
"""

from __future__ import annotations

from srdeploy.errors import RecipeError
from srdeploy.profiles import openvino, ort, ort_avx2, ort_u8u8, trt
from srdeploy.profiles.base import Profile

PROFILES: dict[str, Profile] = {
    p.name: p for p in (trt.PROFILE, ort.PROFILE, ort_avx2.PROFILE, ort_u8u8.PROFILE, openvino.PROFILE)
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise RecipeError(f"unknown profile '{name}'", f"use one of: {', '.join(PROFILES)}") from None


__all__ = ["PROFILES", "Profile", "get_profile"]
