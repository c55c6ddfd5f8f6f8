"""Sparsity settings as a small validated dataclass (the recipe's ``sparsity`` section maps here).

Mirrors :class:`srdeploy.recipe.SparsitySection` so the sparsity code never imports pydantic, and
re-checks what the recipe cannot express in field bounds (N <= M, candidate patterns, roles).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from srdeploy.errors import RecipeError

POLICY_NAMES = ("none", "uniform", "sls", "bn_filter")
SPARSE_ROLES = ("head", "body", "upsampler", "tail")


def _check_pattern(n: int, m: int, what: str) -> None:
    if not (isinstance(n, int) and isinstance(m, int)) or m < 2 or not 0 < n <= m:
        raise RecipeError(f"sparsity.{what}: invalid N:M pattern {n}:{m}", "need integers with 0 < N <= M and M >= 2")


@dataclass(frozen=True)
class SparsityConfig:
    policy: str = "none"
    n: int = 2
    m: int = 4
    # sls: per-layer choices; a layer may always stay dense (M:M is added when missing).
    candidates: tuple[tuple[int, int], ...] = ((4, 4), (3, 4), (2, 4), (1, 4))
    mac_budget: float = 0.5  # sls: fraction of the dense MACs of the include_roles layers to keep
    include_roles: tuple[str, ...] = ("body",)
    bn_threshold: float = 0.01  # bn_filter: max P(active), or max |gamma| / median |gamma| of the layer
    bn_max_fraction: float = 0.5  # bn_filter: at most this share of a layer's channels is removed
    bias_correction: bool = True  # used only when refit is off
    refit: bool = True  # activation-aware masks + least-squares re-fit of kept weights (sparsity/refit.py)
    sensitivity_patches: int = 16
    batch_size: int = 8  # not in the recipe: forward-pass batch for sensitivity runs

    def __post_init__(self) -> None:
        if self.policy not in POLICY_NAMES:
            raise RecipeError(f"sparsity.policy must be one of {POLICY_NAMES}, got {self.policy!r}")
        _check_pattern(self.n, self.m, "n/m")
        object.__setattr__(self, "candidates", tuple((int(n), int(m)) for n, m in self.candidates))
        if not self.candidates:
            raise RecipeError("sparsity.candidates is empty", "list N:M pairs, e.g. [[4, 4], [2, 4], [1, 4]]")
        for n, m in self.candidates:
            _check_pattern(n, m, "candidates")
        if not 0.0 < self.mac_budget <= 1.0:
            raise RecipeError(f"sparsity.mac_budget must be in (0, 1], got {self.mac_budget}")
        bad = set(self.include_roles) - set(SPARSE_ROLES)
        if bad or not self.include_roles:
            raise RecipeError(
                f"sparsity.include_roles: {sorted(bad) or 'empty'} not allowed",
                f"use a non-empty subset of {SPARSE_ROLES} ('fixed' mean-shift convs are never pruned)",
            )
        if not 0.0 < self.bn_threshold < 1.0:
            raise RecipeError(f"sparsity.bn_threshold must be in (0, 1), got {self.bn_threshold}")
        if not 0.0 < self.bn_max_fraction <= 1.0:
            raise RecipeError(f"sparsity.bn_max_fraction must be in (0, 1], got {self.bn_max_fraction}")
        if self.sensitivity_patches < 1 or self.batch_size < 1:
            raise RecipeError("sparsity.sensitivity_patches and batch_size must be >= 1")

    @property
    def sls_options(self) -> tuple[tuple[int, int], ...]:
        """Candidate patterns, de-duplicated, with a dense option first (the solver may keep a layer dense)."""
        opts = {(n, m) for n, m in self.candidates if n < m}
        return ((1, 1), *sorted(opts, key=lambda p: (-p[0] / p[1], p[1])))

    @classmethod
    def from_section(cls, section: Any, **extra: Any) -> SparsityConfig:
        """From a recipe ``SparsitySection`` (or any object / mapping with the same fields)."""
        names = [f.name for f in fields(cls) if f.name != "batch_size"]
        if isinstance(section, dict):
            values = {k: section[k] for k in names if k in section}
        else:
            values = {k: getattr(section, k) for k in names if hasattr(section, k)}
        if "candidates" in values:
            values["candidates"] = tuple(tuple(p) for p in values["candidates"])
        if "include_roles" in values:
            values["include_roles"] = tuple(values["include_roles"])
        return cls(**values, **extra)

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: [list(p) for p in self.candidates] if f.name == "candidates" else getattr(self, f.name)
            for f in fields(self)
        }
