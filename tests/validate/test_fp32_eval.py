"""`srdeploy eval` on checkpoint files of the built-in Real-ESRGAN architectures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from official_layouts import basicsr_rrdbnet_shapes, compact_shapes, random_state
from PIL import Image

from srdeploy.data.categories import CATEGORY_FILE, FORMAT
from srdeploy.data.sets import load_pairs
from srdeploy.errors import ModelError
from srdeploy.validate.fp32_eval import evaluate_fp32
from srdeploy.validate.metrics import psnr_y


@pytest.fixture(scope="module")
def hr_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hr")
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(((26, 30), (22, 34))):  # x2 LR sizes 13x15 and 11x17: odd
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def test_eval_scores_what_the_checkpoint_computes(tmp_path: Path, hr_folder: Path) -> None:
    # All-zero convs: a Compact network's output is exactly its nearest-upsampled input.
    sd = {k: torch.zeros(s) for k, s in compact_shapes(2, 8, 2).items()}
    torch.save({"params": sd}, tmp_path / "zero_compact.pth")
    res = evaluate_fp32(str(tmp_path / "zero_compact.pth"), str(hr_folder))
    assert (res["arch"], res["scale"], len(res["images"])) == ("compact", 2, 2)
    for row, pair in zip(res["images"], load_pairs(str(hr_folder), 2), strict=True):
        nearest = pair.lr.repeat(2, axis=0).repeat(2, axis=1)
        assert row["psnr_y"] == pytest.approx(psnr_y(nearest, pair.hr, 2), abs=1e-9)


def test_eval_runs_an_x2_rrdbnet_on_odd_lr_sizes_and_honours_arch(tmp_path: Path, hr_folder: Path) -> None:
    torch.save({"params_ema": random_state(basicsr_rrdbnet_shapes(1, 8, 4, in_ch=12))}, tmp_path / "x2.pth")
    res = evaluate_fp32(str(tmp_path / "x2.pth"), str(hr_folder), max_images=1, arch="rrdbnet")
    assert (res["arch"], res["scale"], len(res["images"])) == ("rrdbnet", 2, 1)
    with pytest.raises(ModelError, match="do not match the 'compact' layout"):
        evaluate_fp32(str(tmp_path / "x2.pth"), str(hr_folder), arch="compact")


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
