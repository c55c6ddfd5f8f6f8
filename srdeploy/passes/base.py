"""Pass protocol: ``fn(graph, plan, options) -> PassResult``. A pass mutates the onnx-graphsurgeon
graph, says what it changed and why it skipped anything, and changes nothing when run twice."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PassResult:
    name: str
    changes: Counter[str] = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, reason)

    @property
    def changed(self) -> bool:
        return sum(self.changes.values()) > 0

    def note(self, what: str, n: int = 1) -> None:
        self.changes[what] += n

    def skip(self, item: str, reason: str) -> None:
        self.skipped.append((item, reason))

    def summary(self) -> dict[str, Any]:
        return dict(
            name=self.name,
            changed=self.changed,
            changes=dict(sorted(self.changes.items())),
            skipped=[dict(item=i, reason=r) for i, r in self.skipped],
        )
