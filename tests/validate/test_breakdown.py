"""Accuracy by content category and the worst images, from comparison rows built here by hand."""

from __future__ import annotations

import pytest

from srdeploy.validate.breakdown import content_breakdown
from srdeploy.validate.compare import Comparison, ImageRow


def _row(image: str, execution: str, psnr: float) -> ImageRow:
    return ImageRow(image, execution, {0: 1}, psnr, 0.9, psnr, None, None)


def test_categories_means_and_worst_images() -> None:
    fp32 = {"a": 30.0, "b": 40.0, "c": 50.0, "d": 35.0}
    dep = {"a": 29.9, "b": 39.5, "c": 48.8, "d": 35.05}
    rows = [_row(i, "fp32", p) for i, p in fp32.items()] + [_row(i, "onnxruntime:ort", p) for i, p in dep.items()]
    cats = {"a": "photo", "b": "photo", "c": "flat"}
    out = content_breakdown(Comparison(rows).drops(), ["onnxruntime:ort", "sim:ort"], cats)
    assert set(out) == {"onnxruntime:ort"}  # no rows for sim:ort
    by = out["onnxruntime:ort"]["by_category"]
    assert by["photo"]["images"] == 2 and by["photo"]["mean_drop_db"] == pytest.approx(0.3)
    assert by["photo"]["worst_image"] == "b" and by["photo"]["worst_drop_db"] == pytest.approx(0.5)
    assert by["flat"]["worst_drop_db"] == pytest.approx(1.2)
    assert by["uncategorised"]["mean_drop_db"] == pytest.approx(-0.05)
    worst = out["onnxruntime:ort"]["worst_images"]
    assert [w["image"] for w in worst] == ["c", "b", "a"] and worst[0]["category"] == "flat"


def test_report_tables_and_content_section_agree() -> None:
    """The report's worst-image table (from report.json rows) and the content section (from the comparison)
    rank the same images with the same drops; rows without a Y-PSNR are ignored."""
    from srdeploy.validate.report_facts import category_rows, worst_images

    fp32 = {"a": 30.0, "b": 40.0, "c": 50.0}
    dep = {"a": 29.0, "b": 39.9, "c": None}
    rows = [_row(i, "fp32", p) for i, p in fp32.items()] + [_row(i, "onnxruntime:ort", p) for i, p in dep.items()]
    content = content_breakdown(Comparison(rows).drops(), ["onnxruntime:ort"], {"a": "photo", "b": "photo"})
    report = {
        "summary": [{"execution": "onnxruntime:ort", "kind": "deployment"}],
        "images": [dict(image=r.image, execution=r.execution, psnr_y=r.psnr_y) for r in rows],
        "categories": {"a": "photo", "b": "photo"},
    }
    _, table = worst_images(report)
    assert (
        [(r[0], round(r[5], 4)) for r in table]
        == [(w["image"], w["drop_db"]) for w in content["onnxruntime:ort"]["worst_images"]]
        == [("a", 1.0), ("b", 0.1)]
    )
    _, cats = category_rows(report)
    photo = next(r for r in cats if r[0] == "photo")
    assert photo[3] == pytest.approx(content["onnxruntime:ort"]["by_category"]["photo"]["mean_drop_db"])
