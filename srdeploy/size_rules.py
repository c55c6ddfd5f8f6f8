"""The input sizes a network's graph accepts, carried by the model descriptor and the build metadata.

Window/attention networks (SwinIR, HAT, DAT, OmniSR) pad H and W to their window inside ``forward``;
torch.export turns that padding into a guard (H % window == 0), so their graph is only right at multiples
of the window. The graph therefore takes padded sizes, and whoever runs it (the app runtime, the validator)
pads outside the graph with the network's own padding mode and crops the output by the scale: a window
network at any size is padded, never an error. No torch import: the app runtime uses this.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

PadMode = Literal["reflect", "constant"]


@dataclass(frozen=True)
class SizeRules:
    """``multiple``: H and W must be multiples of it; ``minimum``: and at least this; ``pad_mode``: how the
    runtime pads up (the network's own mode, so the padded result equals its own forward); ``batch``: None =
    any batch, an int = the graph was exported for exactly that batch (one image or tile per call)."""

    multiple: int = 1
    minimum: int = 1
    pad_mode: PadMode = "reflect"
    batch: int | None = None

    def __post_init__(self) -> None:
        if self.multiple < 1 or self.minimum < 1 or (self.batch is not None and self.batch < 1):
            raise ValueError(f"size rules need multiple, minimum and batch >= 1, got {self}")
        if self.pad_mode not in ("reflect", "constant"):
            raise ValueError(f"pad_mode must be reflect or constant, got {self.pad_mode!r}")

    @property
    def trivial(self) -> bool:
        """Every size runs as it is: nothing to pad, any batch."""
        return self.multiple == 1 and self.minimum == 1 and self.batch is None

    def padded(self, n: int) -> int:
        """The smallest size >= ``n`` the graph accepts."""
        n = max(n, self.minimum)
        return -(-n // self.multiple) * self.multiple

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any] | None) -> SizeRules:
        return cls() if doc is None else cls(**doc)


NO_RULES = SizeRules()
