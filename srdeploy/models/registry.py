"""The explicit table of built-in architectures. Add one: write a module with an
``ARCHITECTURE`` entry and list it here (order matters only for detection ties)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srdeploy.errors import ModelError
from srdeploy.models import carn, compact, edsr, rdn, rrdbnet, srresnet
from srdeploy.models.base import Architecture
from srdeploy.models.spandrel_import import INSTALL_COMMAND

ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        edsr.ARCHITECTURE,
        srresnet.ARCHITECTURE,
        rdn.ARCHITECTURE,
        carn.ARCHITECTURE,
        rrdbnet.ARCHITECTURE,
        compact.ARCHITECTURE,
    )
}


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ModelError(
            f"unknown architecture '{name}'",
            f"use one of: {known}; or set model.arch: spandrel after {INSTALL_COMMAND}",
        ) from None


def convert_layout(state_dict: Mapping[str, Any], arch: str | None = None) -> Mapping[str, Any]:
    """``state_dict`` renamed to a built-in layout when it is in another known one (e.g. ESRGAN's),
    else unchanged. ``arch`` limits the conversion to that architecture's."""
    specs = [get_architecture(arch)] if arch not in (None, "auto") else list(ARCHITECTURES.values())
    for spec in specs:
        converted = spec.convert(state_dict) if spec.convert else None
        if converted is not None:
            return converted
    return state_dict


def detect_architecture(state_dict: Mapping[str, Any]) -> tuple[Architecture, dict[str, Any]]:
    """Find the built-in architecture whose key layout matches, with its hyper-parameters."""
    for arch in ARCHITECTURES.values():
        hparams = arch.detect(state_dict)
        if hparams is not None:
            return arch, hparams
    sample = ", ".join(sorted(state_dict)[:6])
    known = ", ".join(sorted(ARCHITECTURES))
    raise ModelError(
        f"the checkpoint's keys match no built-in architecture ({known}); first keys: {sample}",
        f"set model.arch explicitly, or for other networks model.arch: spandrel after {INSTALL_COMMAND}",
    )
