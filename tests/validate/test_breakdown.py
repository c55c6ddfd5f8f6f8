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
    out = content_breakdown(Comparison(rows), ["onnxruntime:ort", "sim:ort"], cats)
    assert set(out) == {"onnxruntime:ort"}  # no rows for sim:ort
    by = out["onnxruntime:ort"]["by_category"]
    assert by["photo"]["images"] == 2 and by["photo"]["mean_drop_db"] == pytest.approx(0.3)
    assert by["photo"]["worst_image"] == "b" and by["photo"]["worst_drop_db"] == pytest.approx(0.5)
    assert by["flat"]["worst_drop_db"] == pytest.approx(1.2)
    assert by["uncategorised"]["mean_drop_db"] == pytest.approx(-0.05)
    worst = out["onnxruntime:ort"]["worst_images"]
    assert [w["image"] for w in worst] == ["c", "b", "a"] and worst[0]["category"] == "flat"
