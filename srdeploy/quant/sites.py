"""Names of quantization sites. Conv sites are keyed by the conv's weight parameter name (which
survives ONNX export as the initializer name); residual skips by the ResidualAdd module path."""

from __future__ import annotations

INPUT, OUTPUT, SKIP = "input", "output", "skip"
KINDS = (INPUT, OUTPUT, SKIP)


def site(key: str, kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown site kind {kind!r}")
    return f"{key}@{kind}"


def parse(name: str) -> tuple[str, str]:
    key, _, kind = name.rpartition("@")
    if not key or kind not in KINDS:
        raise ValueError(f"malformed site name {name!r}; expected '<weight or module>@<{'|'.join(KINDS)}>'")
    return key, kind


def module_of(weight_name: str) -> str:
    """'body.0.body.0.weight' -> 'body.0.body.0'."""
    return weight_name.rsplit(".", 1)[0]
