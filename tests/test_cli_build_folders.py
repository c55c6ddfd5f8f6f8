"""Battery, build-folder class: `validate`, `inspect` and `upscale` check the manifest, the checksums
and every metadata value before using a build; a broken one is one error line, exit 2, and is left
as it was. `validate` never writes into the build folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from clitest import assert_kept, assert_one_error, edit_json, resign, run_cli, snapshot


def _set(key: str, value: object) -> Callable[[dict], dict]:
    return lambda doc: {**doc, key: value}


def _plan_bits(doc: dict) -> dict:
    first = sorted(doc["weights"])[0]
    doc["weights"][first]["bits"] = 12
    return doc


def _zero_scale(build: Path) -> None:
    with np.load(build / "plan.npz") as z:
        arrays = {k: z[k] for k in z.files}
    key = next(k for k in sorted(arrays) if k.startswith("w/") and k.endswith("/scale"))
    arrays[key] = np.zeros_like(arrays[key])
    np.savez_compressed(build / "plan.npz", **arrays)


# (how to tamper, re-sign the manifest afterwards?, fragments of the error)
TAMPER: dict[str, tuple[Callable[[Path], None], bool, list[str]]] = {
    "manifest not json": (lambda b: (b / "manifest.json").write_text("{not json"), False, ["not valid JSON"]),
    "manifest not utf-8": (lambda b: (b / "manifest.json").write_bytes(b"\xff\xfe{}"), False, ["not UTF-8"]),
    "manifest a list": (lambda b: (b / "manifest.json").write_text("[1, 2]"), False, ["not a JSON object"]),
    "format 99": (lambda b: edit_json(b / "manifest.json", _set("format_version", 99)), False, ["build format 99"]),
    "manifest path escapes": (
        lambda b: edit_json(b / "manifest.json", lambda d: {**d, "files": {**d["files"], "../x": "0" * 64}}),
        False,
        ["files", "not a path inside the folder"],
    ),
    "file changed": (lambda b: (b / "recipe.yaml").write_text("name: other\n"), False, ["modified after the build"]),
    "file missing": (lambda b: (b / "plan.npz").unlink(), False, ["plan.npz is missing"]),
    "model scale 0": (lambda b: edit_json(b / "model.json", _set("scale", 0)), True, ["model.json", "scale"]),
    "model scale -4": (lambda b: edit_json(b / "model.json", _set("scale", -4)), True, ["model.json", "scale"]),
    "model arch unknown": (lambda b: edit_json(b / "model.json", _set("arch", "unet")), True, ["unknown architecture"]),
    "model.json a list": (lambda b: (b / "model.json").write_text("[]"), True, ["model.json", "invalid values"]),
    "plan bits 12": (lambda b: edit_json(b / "plan.json", _plan_bits), True, ["plan.json", "bits"]),
    "plan wrong shape": (
        lambda b: edit_json(b / "plan.json", lambda d: {"version": 2}),
        True,
        ["plan.json", "missing key"],
    ),
    "plan zero scale": (_zero_scale, True, ["scales", "finite and > 0"]),
}


# inspect reads the plan, not model.json
PAIRS = [(c, cmd) for c in sorted(TAMPER) for cmd in ("validate", "inspect") if cmd == "validate" or "model" not in c]


@pytest.mark.parametrize(("case", "command"), PAIRS)
def test_broken_build_is_refused(ws: Path, build_copy: Path, case: str, command: str) -> None:
    tamper, sign, fragments = TAMPER[case]
    tamper(build_copy)
    if sign:
        resign(build_copy)
    before = snapshot(build_copy.parent)
    res = run_cli(command, str(build_copy), cwd=ws)
    assert_one_error(res, 2, *fragments)
    assert_kept(before, build_copy.parent)
    assert snapshot(build_copy.parent) == before  # no report folder either


@pytest.mark.parametrize("case", ["tiers scale -4", "tiers changed", "tier file not in manifest", "selector bad"])
def test_upscale_refuses_broken_tiers(ws: Path, build_copy: Path, case: str) -> None:
    tiers = build_copy / "tiers.json"
    if case == "tiers scale -4":
        edit_json(tiers, _set("scale", -4))
        resign(build_copy)
    elif case == "tiers changed":
        edit_json(tiers, _set("default_tier", 0))
    elif case == "tier file not in manifest":
        edit_json(tiers, lambda d: {**d, "tiers": [{**d["tiers"][0], "files": {"ort": "extra.onnx"}}]})
        resign(build_copy)
        (build_copy / "extra.onnx").write_bytes((build_copy / "ort" / "model.onnx").read_bytes())
    else:
        edit_json(tiers, _set("selector", {"statistic": "sobel_mean_x1000", "thresholds": [1.0], "tiers": [0]}))
        resign(build_copy)
    before = snapshot(ws)
    res = run_cli("upscale", "calib/img0.png", "big.png", "--build", str(build_copy), cwd=ws)
    fragments = {
        "tiers scale -4": ["tiers.json", "scale"],
        "tiers changed": ["tiers.json was modified after the build"],
        "tier file not in manifest": ["extra.onnx is not listed in the manifest"],
        "selector bad": ["selector", "1 thresholds need 2 tiers"],
    }[case]
    assert_one_error(res, 2, *fragments)
    assert_kept(before, ws)
    assert not (ws / "big.png").exists()


def test_not_a_build_folder(ws: Path) -> None:
    for command in (["validate", "calib"], ["inspect", "calib"], ["upscale", "calib/img0.png", "o.png", "-b", "calib"]):
        before = snapshot(ws)
        assert_one_error(run_cli(*command, cwd=ws), 2, "not an srdeploy build folder")
        assert_kept(before, ws)


def test_missing_build_points_to_the_failed_one(ws: Path, build_copy: Path) -> None:
    build_copy.rename(build_copy.with_name("tiny.failed"))
    res = run_cli("validate", str(build_copy), cwd=ws)
    assert_one_error(res, 2, "build folder not found", "failed validation", "tiny.failed")


def test_inspect_a_plan_json_outside_a_build(ws: Path, build_copy: Path) -> None:
    (ws / "plan.json").write_text(json.dumps({"version": 2, "layers": "all of them"}))
    before = snapshot(ws)
    assert_one_error(run_cli("inspect", "plan.json", cwd=ws), 2, "plan.json", "plan.npz")
    assert_kept(before, ws)


@pytest.mark.parametrize("value", ["-1", "0"])
def test_validate_max_images_below_one(ws: Path, build_copy: Path, value: str) -> None:
    before = snapshot(build_copy.parent)
    res = run_cli("validate", str(build_copy), "--max-images", value, cwd=ws)
    assert_one_error(res, 2, "--max-images", "greater than or equal to 1")
    assert snapshot(build_copy.parent) == before


def test_validate_leaves_the_build_alone(ws: Path, build_copy: Path) -> None:
    """Reports go beside the build; the build stays byte-identical, so a second run still verifies."""
    before = snapshot(build_copy)
    for _ in range(2):
        res = run_cli("validate", str(build_copy), "--max-images", "1", cwd=ws)
        assert res.code == 0, res.err
        assert snapshot(build_copy) == before
    reports = build_copy.with_name("tiny.validate")
    assert sorted(p.name for p in build_copy.parent.iterdir()) == ["tiny", "tiny.validate"]
    assert {"validate.json", "validate.md", "validate.junit.xml", "manifest.json"} <= {
        p.name for p in reports.iterdir()
    }
    report = json.loads((reports / "validate.json").read_text())
    assert report["images_evaluated"] == 1 and report["verdict"] == "pass"
    assert all((reports / v).is_file() for v in report["visuals"].values())


def test_validate_report_into_a_user_folder_is_refused(ws: Path, build_copy: Path) -> None:
    before = snapshot(ws)
    res = run_cli("validate", str(build_copy), "--report", "calib", cwd=ws)
    assert_one_error(res, 2, "calib", "not an srdeploy validation report folder")
    assert_kept(before, ws)


@pytest.mark.parametrize("where", ["inside", "the build"])
def test_validate_report_into_the_build_is_refused(ws: Path, build_copy: Path, where: str) -> None:
    before = snapshot(build_copy)
    target = build_copy / "reports" if where == "inside" else build_copy
    res = run_cli("validate", str(build_copy), "--report", str(target), cwd=ws)
    assert_one_error(res, 2, "is the build folder or inside it")
    assert snapshot(build_copy) == before
