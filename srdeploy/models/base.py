"""The contract every built-in architecture follows, and the model descriptor."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from srdeploy.size_rules import NO_RULES, SizeRules

# Layer roles decide the default precision: "body" convs are quantized, "head", "upsampler" and
# "tail" stay in float unless the recipe asks for them at 8 bit, "fixed" (mean shifts) never are.
ROLES = ("head", "body", "upsampler", "tail", "fixed")


class SRNetwork(nn.Module):
    """Base class of the built-in networks. Input and output are RGB in [0, 1]."""

    arch: str = ""
    scale: int = 1

    def __init__(self) -> None:
        super().__init__()
        self.hparams: dict[str, Any] = {}

    def layer_roles(self) -> dict[str, str]:
        """Map each conv's weight parameter name to its role (see ROLES)."""
        raise NotImplementedError

    def fuse_for_deploy(self) -> None:
        """Fold BatchNorm, residual scaling and pixel-range constants into the convs.

        Changes no output (to float tolerance); idempotent.
        """


@dataclass(frozen=True)
class Architecture:
    """A registry entry: how to recognise a state dict and build the network for it."""

    name: str
    summary: str
    detect: Callable[[Mapping[str, Any]], dict[str, Any] | None]
    build: Callable[..., SRNetwork]
    hparam_names: tuple[str, ...] = ()
    # Renames another key layout of the same network (e.g. ESRGAN's) to this one's; None when the
    # state dict is not in such a layout. Applied before detection and loading.
    convert: Callable[[Mapping[str, Any]], dict[str, Any] | None] | None = None


@dataclass(frozen=True)
class SRModel:
    """A loaded network and what srdeploy needs to know about it."""

    module: nn.Module
    arch: str
    scale: int
    hparams: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    name: str = ""
    in_channels: int = 3
    out_channels: int = 3
    # the input sizes the exported graph accepts; the runtime and validator pad to them (size_rules.py)
    size_rules: SizeRules = NO_RULES

    @property
    def size_multiple(self) -> int:
        return self.size_rules.multiple

    def layer_roles(self) -> dict[str, str]:
        roles = getattr(self.module, "layer_roles", None)
        if callable(roles):
            return dict(roles())
        return generic_layer_roles(self.module)


def roles_by_prefix(module: nn.Module, rules: Sequence[tuple[str, str]], default: str = "body") -> dict[str, str]:
    """Conv weight name -> role of the first rule whose module prefix matches."""
    roles = {}
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d):
            role = next((r for p, r in rules if name == p or name.startswith(p + ".")), default)
            roles[f"{name}.weight"] = role
    return roles


def generic_layer_roles(module: nn.Module) -> dict[str, str]:
    """Roles for networks without their own table: first conv head, last conv tail,
    convs that feed a PixelShuffle upsampler, everything else body."""
    convs = [name for name, m in module.named_modules() if isinstance(m, nn.Conv2d)]
    roles = {f"{n}.weight": "body" for n in convs}
    if convs:
        roles[f"{convs[0]}.weight"] = "head"
        roles[f"{convs[-1]}.weight"] = "tail"
    return roles
