"""report.md / report.html / JUnit from real builds of the CLI battery's tiny recipe."""

from __future__ import annotations

import base64
import io
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from clitest import run_cli
from PIL import Image
from srtest import make_plan

from srdeploy.data.categories import category_file_text
from srdeploy.validate.report import EMULATION_NOTE, applicable_notes
from srdeploy.validate.report_facts import threshold_checks


def table_widths(md: str) -> set[int]:
    """Cell counts of every Markdown table line (escaped pipes are not separators)."""
    return {len(line.replace("\\|", "").split("|")) for line in md.splitlines() if line.startswith("|")}


def _report(build: Path) -> dict:
    return json.loads((build / "report.json").read_text())


def test_margins_are_value_against_limit(good_build: Path) -> None:
    report = _report(good_build)
    checks = threshold_checks(report)
    assert checks, "the battery recipe sets thresholds"
    by, limits = {s["execution"]: s for s in report["summary"]}, report["thresholds"]
    for c in checks:
        if c.threshold == "max_psnr_drop_db":
            assert c.margin == pytest.approx(limits["max_psnr_drop_db"] - by[c.execution]["psnr_drop_db"])
        if c.threshold == "min_agreement_db":
            assert c.margin == pytest.approx(by[c.execution]["agreement_min_db"] - limits["min_agreement_db"])
        assert c.passed
    md = (good_build / "report.md").read_text()
    assert "| threshold | value | margin |" in md
    drop = next(c for c in checks if c.threshold == "max_psnr_drop_db")
    assert f"<= {drop.limit:.3f} | {drop.value:.3f} | {drop.margin:+.3f} | pass |" in md


def test_markdown_has_no_json_and_no_tier_noise_on_one_tier(good_build: Path) -> None:
    md = (good_build / "report.md").read_text()
    report = _report(good_build)
    assert len(report["quantization"]["tiers"]) == 1
    assert "```" not in md and '{"' not in md and '\\"' not in md
    for block in md.split("\n\n"):
        assert len(table_widths(block)) <= 1, block  # every row of a table has the header's cells
    for section in ("## Accuracy", "## Per image"):
        body = md.split(section)[1].split("\n## ")[0]
        assert "tier" not in body and "0:" not in body, section
    assert "fp32-MAC equivalents" in md  # BitOPs unit convention
    for heading in ("## Artifacts", "## ONNX Runtime fusion", "## TensorRT lint", "## TensorRT engines"):
        assert heading in md, heading


def test_sub_8_bit_note_only_where_it_applies(tiny_model, tiny_export, tiny_plan_w8a8, good_build: Path) -> None:
    assert applicable_notes(tiny_plan_w8a8) == []
    assert EMULATION_NOTE not in (good_build / "report.md").read_text()  # the battery build is W8A8
    low = make_plan(tiny_model, tiny_export, weight_bits=4, act_bits=8, method="mse")
    assert applicable_notes(low) == [EMULATION_NOTE]
    stream = replace(tiny_plan_w8a8, bits=replace(tiny_plan_w8a8.bits, float_residual_tiers=(0,)))
    (note,) = applicable_notes(stream)
    assert note.startswith("Tier 0 (base): the residual stream stays float")


def test_junit_names_what_ran_each_graph(good_build: Path) -> None:
    xml = (good_build / "report.junit.xml").read_text()
    names = re.findall(r'<testcase classname="[^"]*" name="([^"]*)"', xml)
    assert "onnxruntime:trt: trt-profile graph run by ONNX Runtime, not TensorRT" in names
    assert "onnxruntime:ort: ort-profile graph run by ONNX Runtime" in names


def _embedded_images(html: str) -> list[Image.Image]:
    srcs = re.findall(r'<img src="([^"]+)"', html)
    images = []
    for src in srcs:
        assert src.startswith("data:image/png;base64,"), src[:40]
        images.append(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))
    return images


def test_html_report_embeds_every_figure(good_build: Path) -> None:
    report = _report(good_build)
    html = (good_build / "report.html").read_text()
    images = _embedded_images(html)
    assert len(images) == len(report["visuals"]) >= 2
    assert all(im.width > 0 and im.height > 0 for im in images)
    assert 'class="verdict pass"' in html and "margin" in html


def test_failing_validate_shows_negative_margins_and_categories(ws: Path, good_build: Path) -> None:
    cats = {"img0": "text", "img1": "face"}
    (ws / "hr" / "categories.json").write_text(category_file_text(cats))
    res = run_cli("validate", str(good_build), "--min-psnr", "99", "--report", "rep", cwd=ws)
    assert res.code == 1, res.err
    report = json.loads((ws / "rep" / "validate.json").read_text())
    assert report["categories"] == cats
    failed = [c for c in threshold_checks(report) if c.threshold == "min_psnr_db"]
    assert failed and all(not c.passed and c.margin < 0 for c in failed)
    md = (ws / "rep" / "validate.md").read_text()
    row = next(line for line in md.splitlines() if "mean Y-PSNR vs HR" in line)
    assert ">= 99.000" in row and "| FAIL |" in row and "| -" in row
    table = md.split("## Per category")[1].split("##")[0]
    assert "| face | 1 |" in table and "| text | 1 |" in table
    assert 'class="fail"' in (ws / "rep" / "validate.html").read_text()


def test_difference_map_levels_and_crop_position() -> None:
    from srdeploy.validate.visual_crops import crop_box, difference_levels

    a = np.zeros((64, 80, 3), np.float32)
    b = a.copy()
    b[40:48, 50:60, 1] = 4 / 255
    levels = difference_levels(a, b)
    assert levels.max() == pytest.approx(4.0, abs=1e-4) and levels[0, 0] == 0
    y, x = crop_box(a, b, size=16)
    assert y <= 40 and y + 16 >= 48 and x <= 50 and x + 16 >= 60


def test_bits_chart_names_the_float_type(tiny_plan_w8a8) -> None:
    from srdeploy.validate.visual_bits import float_label

    expected = {"float16": "FP16", "float32": "FP32"}
    for profile, emission in tiny_plan_w8a8.emission.items():
        assert float_label(tiny_plan_w8a8, profile) == expected[emission.float_dtype]
    assert {float_label(tiny_plan_w8a8, p) for p in tiny_plan_w8a8.profiles} == {"FP16", "FP32"}
