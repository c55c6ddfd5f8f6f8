from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from srdeploy.data.categories import CATEGORY_FILE, FORMAT
from srdeploy.validate.fp32_eval import evaluate_fp32

REPO = Path(__file__).resolve().parents[2]


def test_fp32_eval_reports_each_category(tmp_path: Path) -> None:
    for name in ("ocv_butterfly", "ocv_happy_fish", "ocv_robin"):
        shutil.copy(REPO / "calib_data" / "eval" / f"{name}.png", tmp_path / f"{name}.png")
    tags = {"ocv_butterfly": "photo", "ocv_happy_fish": "line_art"}
    (tmp_path / CATEGORY_FILE).write_text(json.dumps({"format": FORMAT, "categories": tags}))
    res = evaluate_fp32("edsr_baseline_x2", str(tmp_path))
    by_image = {r["image"]: r for r in res["images"]}
    assert {k: r["category"] for k, r in by_image.items()} == {**tags, "ocv_robin": "uncategorised"}
    assert set(res["categories"]) == {"photo", "line_art", "uncategorised"}
    line_art = res["categories"]["line_art"]
    assert line_art["images"] == 1
    assert line_art["psnr_y"] == pytest.approx(by_image["ocv_happy_fish"]["psnr_y"])
    assert res["mean"]["images"] == 3
    assert res["mean"]["psnr_y"] == pytest.approx(sum(r["psnr_y"] for r in res["images"]) / 3)
