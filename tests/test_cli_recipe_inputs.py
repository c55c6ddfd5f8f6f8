"""Battery, recipe class: every bad recipe is one error line, exit 2, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from clitest import BATTERY_RECIPE, assert_kept, assert_one_error, leftovers, run_cli, snapshot

# (recipe text replacing the battery recipe, fragments the error line must hold)
BAD_FILES = {
    "top-level list": ("- name: x\n- model: {path: tiny.pt}\n", ["must be a YAML mapping"]),
    "yaml syntax": ("name: tiny\nmodel: {path: tiny.pt\n", ["is not valid YAML"]),
    "empty file": ("", ["must be a YAML mapping"]),
    "unknown key": (BATTERY_RECIPE + "colour: blue\n", ["colour", "Extra inputs are not permitted"]),
    "empty name": (BATTERY_RECIPE.replace("name: tiny", 'name: ""'), ["name", "must not be empty"]),
    "name escapes builds/": (BATTERY_RECIPE.replace("name: tiny", "name: ../escaped"), ["name", "'..'"]),
    "name with a separator": (BATTERY_RECIPE.replace("name: tiny", "name: a/b"), ["name", "'/'"]),
    "name is ..": (BATTERY_RECIPE.replace("name: tiny", 'name: ".."'), ["name", "'..'"]),
    "name with a tab": (BATTERY_RECIPE.replace("name: tiny", 'name: "a\\tb"'), ["name", "control characters"]),
    "hidden name": (BATTERY_RECIPE.replace("name: tiny", "name: .hidden"), ["name", "start with '.'"]),
    "name and path": (
        BATTERY_RECIPE.replace("{path: tiny.pt}", "{path: tiny.pt, name: edsr_baseline_x2}"),
        ["exactly one"],
    ),
    "name not a string": (BATTERY_RECIPE.replace("name: tiny", "name: [1]"), ["name", "valid string"]),
}

BAD_SETTINGS = {
    "act bits 1": ("quant.act_bits=1", ["quant.act_bits", "greater than or equal to 2"]),
    "weight bits 9": ("quant.weight_bits=9", ["quant.weight_bits", "less than or equal to 8"]),
    "no profiles": ("export.profiles=[]", ["export.profiles", "at least one profile"]),
    "profile twice": ("export.profiles=[trt, trt]", ["export.profiles", "twice"]),
    "unknown profile": ("export.profiles=[tensorflow]", ["export.profiles"]),
    "negative trt shape": ("tensorrt.min_shape=[-1, 16, 16]", ["tensorrt.min_shape", "greater than or equal to 1"]),
    "trt min above max": ("tensorrt.min_shape=[8, 16, 16]", ["tensorrt", "min_shape 8 <= opt_shape 1"]),
    "rgb_range nan": ("model.rgb_range=.nan", ["model.rgb_range", "finite"]),
    "rgb_range 0": ("model.rgb_range=0", ["model.rgb_range", "greater than 0"]),
    "scale 0": ("model.scale=0", ["model.scale", "greater than or equal to 1"]),
    "scale negative": ("model.scale=-2", ["model.scale"]),
    "max_images 0": ("validate.max_images=0", ["validate.max_images"]),
    "negative seed": ("seed=-1", ["seed"]),
    "infinite threshold": ("validate.thresholds.min_psnr_db=.inf", ["min_psnr_db", "finite"]),
    "empty dataset": ("validate.dataset=''", ["validate.dataset"]),
    "override without =": ("quant.act_bits", ["is not of the form key.path=value"]),
    "override into a value": ("model.path.x=1", ["'path' is not a section"]),
}


def _refused(ws: Path, *args: str, fragments: list[str]) -> None:
    before = snapshot(ws)
    res = run_cli("build", *args, cwd=ws)
    assert_one_error(res, 2, *fragments)
    assert_kept(before, ws)
    assert snapshot(ws) == before  # nothing new either: no builds/, no lock, no partial
    assert not leftovers(ws)


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_recipe_file(ws: Path, case: str) -> None:
    text, fragments = BAD_FILES[case]
    (ws / "bad.yaml").write_text(text)
    _refused(ws, "--recipe", "bad.yaml", fragments=["bad.yaml", *fragments])


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
def test_bad_recipe_value(ws: Path, case: str) -> None:
    override, fragments = BAD_SETTINGS[case]
    _refused(ws, "--recipe", "recipe.yaml", "--set", override, fragments=fragments)


def test_missing_recipe(ws: Path) -> None:
    _refused(ws, "--recipe", "nowhere.yaml", fragments=["nowhere.yaml", "not found"])


def test_recipe_is_a_folder(ws: Path) -> None:
    _refused(ws, "--recipe", "calib", fragments=["calib", "is a folder"])


def test_recipe_not_utf8(ws: Path) -> None:
    (ws / "latin1.yaml").write_bytes(BATTERY_RECIPE.replace("tiny", "t\xefny").encode("latin-1"))
    _refused(ws, "--recipe", "latin1.yaml", fragments=["latin1.yaml", "not UTF-8", "0xef"])


def test_recipe_with_python_tag_is_not_executed(ws: Path) -> None:
    (ws / "evil.yaml").write_text("name: !!python/object/apply:os.system ['touch pwned']\nmodel: {path: tiny.pt}\n")
    _refused(ws, "--recipe", "evil.yaml", fragments=["evil.yaml", "not valid YAML"])
    assert not (ws / "pwned").exists()
