"""Battery, checkpoint class: unreadable, unsafe or mismatched checkpoints fail in one line, exit 2,
with no output folder, no partial folder and nothing of the user's changed."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from clitest import assert_kept, assert_one_error, leftovers, run_cli, snapshot


class _Pwn:
    """Pickles to a call that would create a file if the loader executed it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (f"touch {self.marker}",))


def _truncated(ws: Path) -> str:
    data = (ws / "tiny.pt").read_bytes()
    (ws / "cut.pt").write_bytes(data[: len(data) // 2])
    return "cut.pt"


def _text(ws: Path) -> str:
    (ws / "notes.pt").write_text("these are not weights\n")
    return "notes.pt"


def _empty(ws: Path) -> str:
    (ws / "empty.pt").write_bytes(b"")
    return "empty.pt"


def _pickled_code(ws: Path) -> str:
    with open(ws / "evil.pt", "wb") as f:
        pickle.dump({"state_dict": _Pwn(ws / "pwned")}, f)
    return "evil.pt"


def _bad_safetensors(ws: Path) -> str:
    (ws / "bad.safetensors").write_bytes(b"\xff\xff\xff\xff\xff\xff\xff\x7f{not json")
    return "bad.safetensors"


def _not_a_state_dict(ws: Path) -> str:
    torch.save([1, 2, 3], ws / "list.pt")
    return "list.pt"


def _unknown_layout(ws: Path) -> str:
    torch.save({"encoder.weight": torch.zeros(4, 4)}, ws / "other.pt")
    return "other.pt"


def _nan_weights(ws: Path) -> str:
    sd = torch.load(ws / "tiny.pt", weights_only=True)
    sd["head.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(sd, ws / "nan.pt")
    return "nan.pt"


def _folder(ws: Path) -> str:
    (ws / "ckpt.pt").mkdir()
    return "ckpt.pt"


CASES: dict[str, tuple[Callable[[Path], str], list[str]]] = {
    "missing": (lambda ws: "missing.pt", ["checkpoint not found", "missing.pt"]),
    "empty": (_empty, ["empty (0 bytes)"]),
    "truncated": (_truncated, ["cannot load checkpoint", "cut.pt", "weights-only loading can read"]),
    "text file": (_text, ["cannot load checkpoint", "notes.pt", "weights-only loading can read"]),
    "pickled code": (_pickled_code, ["cannot load checkpoint", "safely", "weights-only"]),
    "corrupt safetensors": (_bad_safetensors, ["cannot read safetensors file"]),
    "not a state dict": (_not_a_state_dict, ["holds no state dict"]),
    "unknown layout": (_unknown_layout, ["match no built-in architecture", "srdeploy[zoo]"]),
    "nan weights": (_nan_weights, ["head.0.weight", "NaN or Inf"]),
    "a folder": (_folder, ["ckpt.pt", "is a folder, not a file"]),
}


def _refused(ws: Path, fragments: list[str], *args: str) -> None:
    before = snapshot(ws)
    res = run_cli("build", "--recipe", "recipe.yaml", "--no-validate", *args, cwd=ws)
    assert_one_error(res, 2, *fragments)
    assert_kept(before, ws)
    assert not (ws / "builds" / "tiny").exists() and not (ws / "builds" / "tiny.failed").exists()
    assert not (ws / "builds").exists() or not leftovers(ws / "builds")


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_checkpoint(ws: Path, case: str) -> None:
    make, fragments = CASES[case]
    name = make(ws)
    _refused(ws, fragments, "--set", f"model.path={name}")
    assert not (ws / "pwned").exists()  # the pickled call never ran


def test_checkpoint_for_another_scale(ws: Path) -> None:
    _refused(ws, ["shape", "check model.scale"], "--set", "model.scale=3")


def test_unknown_architecture(ws: Path) -> None:
    _refused(ws, ["unknown architecture 'unet'", "srdeploy[zoo]"], "--set", "model.arch=unet")


def test_unknown_bundled_model(ws: Path) -> None:
    _refused(ws, ["edsr_baseline_x5"], "--set", "model.path=null", "--set", "model.name=edsr_baseline_x5")
