"""The console summary of a validation: a tier column only where images went to more than one tier."""

from __future__ import annotations

import io

from rich.console import Console

from srdeploy import cli_ui


def _report(usage: dict) -> dict:
    row = dict(psnr_y=30.0, ssim_y=0.9, psnr_drop_db=0.05, agreement_min_db=49.0, tier_usage=usage)
    return dict(
        recipe={"name": "r"}, dataset="eval", verdict="pass", failures=[], warnings=["w1"],
        bicubic=dict(psnr_y=29.0, ssim_y=0.8), summary=[dict(row, execution="onnxruntime:ort")],
    )


def _text(report: dict) -> str:
    console = Console(file=io.StringIO(), width=120)
    cli_ui.print_summary(console, report)
    return console.file.getvalue()


def test_single_tier_builds_have_no_tier_column() -> None:
    text = _text(_report({"0": 41}))
    assert "tiers" not in text and "0:41" not in text and "onnxruntime:ort" in text and "w1" in text


def test_tiered_builds_show_where_images_went() -> None:
    text = _text(_report({"0": 3, "1": 2}))
    assert "tiers" in text and "0:3, 1:2" in text
