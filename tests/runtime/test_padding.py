"""Size rules and the padding outside the graph (srdeploy/size_rules.py, runtime/padding.py), against torch's own
padding and against a graph that refuses sizes off its rules; and the rules as build metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from srdeploy.errors import BuildFolderError
from srdeploy.metadata import check_tiers_doc
from srdeploy.runtime.padding import pad_batch, run_padded
from srdeploy.size_rules import NO_RULES, SizeRules


def test_padded_sizes_are_the_smallest_accepted_ones() -> None:
    rules = SizeRules(multiple=8, minimum=16)
    assert [rules.padded(n) for n in (1, 15, 16, 17, 24, 25)] == [16, 16, 16, 24, 24, 32]
    assert [SizeRules(multiple=3).padded(n) for n in (1, 3, 4)] == [3, 3, 6]
    assert NO_RULES.trivial and not SizeRules(batch=1).trivial
    with pytest.raises(ValueError):
        SizeRules(multiple=0)
    with pytest.raises(ValueError):
        SizeRules(pad_mode="wrap")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["reflect", "constant"])
def test_padding_is_torchs_own_bottom_right_padding(mode: str) -> None:
    x = np.random.default_rng(0).random((2, 3, 13, 10), dtype=np.float32)
    got = pad_batch(x, SizeRules(multiple=8, pad_mode=mode))
    want = F.pad(torch.from_numpy(x), (0, 6, 0, 3), mode=mode).numpy()
    assert got.shape == (2, 3, 16, 16)
    np.testing.assert_array_equal(got, want)
    fits = x[:, :, :8, :8]
    assert pad_batch(fits, SizeRules(multiple=8)) is fits  # nothing to pad: no copy


def _strict_graph(multiple: int, batch: int | None, calls: list[tuple[int, ...]]):
    """Nearest x2 upscaling that, like an exported window network, refuses sizes off its rules."""

    def infer(x: np.ndarray) -> np.ndarray:
        calls.append(x.shape)
        if x.shape[2] % multiple or x.shape[3] % multiple or (batch is not None and x.shape[0] != batch):
            raise RuntimeError(f"cannot reshape {x.shape} into windows of {multiple}")
        return x.repeat(2, axis=2).repeat(2, axis=3) + np.arange(x.shape[3] * 2, dtype=np.float32)

    return infer


def test_run_padded_feeds_the_graph_only_accepted_sizes_and_crops_back() -> None:
    x = np.random.default_rng(1).random((3, 3, 17, 10), dtype=np.float32)
    calls: list[tuple[int, ...]] = []
    rules = SizeRules(multiple=4, minimum=16, batch=1)
    y = run_padded(_strict_graph(4, 1, calls), x, rules, scale=2)
    assert calls == [(1, 3, 20, 16)] * 3  # one image per call, padded to 20 x 16
    assert y.shape == (3, 3, 34, 20)
    want = x.repeat(2, axis=2).repeat(2, axis=3) + np.arange(32, dtype=np.float32)[:20]
    np.testing.assert_array_equal(y, want)
    with pytest.raises(RuntimeError, match="windows"):
        _strict_graph(4, 1, [])(x)  # the same graph without the padding


def test_tiers_json_size_rules_are_range_checked(tmp_path: Path) -> None:
    doc = {"scale": 2, "tiers": [{"index": 0, "name": "base", "files": {"ort": "ort/model.onnx"}}]}
    good = {**doc, "size_rules": {"multiple": 8, "minimum": 16, "pad_mode": "reflect", "batch": 1}}
    assert check_tiers_doc(good, tmp_path / "tiers.json").size_rules.rules() == SizeRules(8, 16, "reflect", 1)
    assert check_tiers_doc(doc, tmp_path / "tiers.json").size_rules is None
    for bad in ({"multiple": 0}, {"pad_mode": "wrap"}, {"batch": 0}):
        with pytest.raises(BuildFolderError, match="size_rules"):
            check_tiers_doc(json.loads(json.dumps({**doc, "size_rules": bad})), tmp_path / "tiers.json")
