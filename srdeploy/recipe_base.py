"""The base of every recipe section: frozen, unknown keys refused, no NaN or infinity."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    # NaN/inf pass every ge/le bound, so no recipe float may be one (`rgb_range: .nan`).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
