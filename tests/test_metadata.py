"""metadata / plan_io: every value of a build's JSON and plan arrays is range-checked on read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from srdeploy.errors import BuildFolderError, PlanError
from srdeploy.metadata import check_model_doc, check_tiers_doc, read_json
from srdeploy.quant.plan_io import check_plan_fits, load_plan, save_plan

MODEL = {"arch": "edsr", "name": "t", "scale": 2, "hparams": {"scale": 2, "rgb_range": 255.0}, "structure": {}}
TIERS = {
    "scale": 2,
    "default_tier": 0,
    "selector": None,
    "tiers": [{"index": 0, "name": "base", "fab": 8.0, "files": {"ort": "ort/model.onnx"}}],
}


def test_good_documents_pass() -> None:
    assert check_model_doc(MODEL, Path("model.json")).scale == 2
    assert check_tiers_doc(TIERS, Path("tiers.json")).tiers[0].files["ort"] == "ort/model.onnx"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"scale": 0}, "scale: Input should be greater than or equal to 1"),
        ({"scale": -4}, "scale"),
        ({"scale": 2.5}, "scale"),
        ({"scale": "2"}, "scale"),
        ({"scale": 64}, "less than or equal to 16"),
        ({"hparams": {"scale": 4}}, "hparams.scale 4 differs from scale 2"),
        ({"hparams": {"rgb_range": float("nan")}}, "rgb_range"),
        ({"arch": ""}, "arch"),
    ],
)
def test_bad_model_json(change: dict, match: str) -> None:
    with pytest.raises(BuildFolderError, match=match):
        check_model_doc({**MODEL, **change}, Path("model.json"))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"scale": -4}, "scale"),
        ({"tiers": []}, "tiers"),
        ({"default_tier": 3}, "default_tier 3 is not one of the tiers"),
        ({"selector": {"statistic": "s", "thresholds": [2.0, 1.0], "tiers": [0, 0, 0]}}, "ascending"),
        ({"selector": {"statistic": "s", "thresholds": [float("nan")], "tiers": [0, 0]}}, "finite"),
        ({"selector": {"statistic": "s", "thresholds": [1.0], "tiers": [0, 5]}}, "tiers \\[5\\] that do not exist"),
        ({"tiers": [{"index": 0, "name": "b", "fab": -1.0, "files": {}}]}, "fab"),
        ({"tiers": [{"index": 0, "name": "b", "files": {"tensorflow": "m.pb"}}]}, "unknown profile.*tensorflow"),
    ],
)
def test_bad_tiers_json(change: dict, match: str) -> None:
    with pytest.raises(BuildFolderError, match=match):
        check_tiers_doc({**TIERS, **change}, Path("tiers.json"))


def test_read_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b"\x89binary")
    with pytest.raises(BuildFolderError, match=r"a\.json is not UTF-8 text"):
        read_json(tmp_path / "a.json", BuildFolderError, "tiers file")
    with pytest.raises(BuildFolderError, match="is missing"):
        read_json(tmp_path / "b.json", BuildFolderError, "tiers file")


@pytest.fixture
def plan_files(tmp_path: Path, tiny_plan_w8a8) -> Path:
    save_plan(tiny_plan_w8a8, tmp_path / "plan.json")
    return tmp_path / "plan.json"


def _edit_arrays(path: Path, change) -> None:
    npz = path.with_suffix(".npz")
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    np.savez_compressed(npz, **arrays)


def test_saved_plan_loads(plan_files: Path, tiny_plan_w8a8, tiny_model) -> None:
    plan = load_plan(plan_files)
    assert sorted(plan.weights) == sorted(tiny_plan_w8a8.weights)
    check_plan_fits(plan, tiny_model.module, plan_files.parent)


@pytest.mark.parametrize(
    ("key_part", "value", "match"),
    [
        ("/scale", 0.0, "finite and > 0"),
        ("/scale", np.nan, "finite and > 0"),
        ("/scale", -1.0, "finite and > 0"),
        ("/zero_point", 300, "do not fit the 8-bit grid"),
    ],
)
def test_bad_plan_arrays(plan_files: Path, key_part: str, value: float, match: str) -> None:
    def change(arrays: dict) -> None:
        key = next(k for k in sorted(arrays) if k.startswith("a/") and k.endswith(key_part))
        arrays[key] = np.full_like(arrays[key], value)

    _edit_arrays(plan_files, change)
    with pytest.raises(PlanError, match=match):
        load_plan(plan_files)


def test_per_channel_scales_must_match_the_layer(plan_files: Path) -> None:
    def change(arrays: dict) -> None:
        key = next(k for k in sorted(arrays) if k.startswith("w/") and k.endswith("/scale"))
        arrays[key] = arrays[key][:1]

    _edit_arrays(plan_files, change)
    with pytest.raises(PlanError, match="scale\\(s\\), expected"):
        load_plan(plan_files)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: {**d, "version": 7}, "plan version 7 is not supported"),
        (lambda d: [d], "not an object"),
        (lambda d: {**d, "arrays": "../elsewhere.npz"}, "not beside it"),
        (lambda d: {**d, "weights": {"ghost.weight": next(iter(d["weights"].values()))}}, "ghost.weight"),
        (lambda d: {**d, "tiers": [{**d["tiers"][0], "activations": {"tflite": {}}}]}, "unknown profile"),
    ],
)
def test_bad_plan_json(plan_files: Path, edit, match: str) -> None:
    plan_files.write_text(json.dumps(edit(json.loads(plan_files.read_text()))))
    with pytest.raises(PlanError, match=match):
        load_plan(plan_files)


def test_plan_for_another_model_does_not_fit(plan_files: Path) -> None:
    from srtest import tiny_edsr

    with pytest.raises(BuildFolderError, match="output channels"):
        check_plan_fits(load_plan(plan_files), tiny_edsr(feats=16).module, plan_files.parent)
