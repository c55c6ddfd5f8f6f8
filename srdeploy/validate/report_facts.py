"""Facts a reader needs, computed from report.json alone (the Markdown and HTML renderers share them).

- ``threshold_checks``: per deployed execution and threshold, the value, the limit and the margin
  (how far from failing, positive = passes), so "PASS at 0.072 against 0.08" reads as 0.008 dB of room;
- ``category_rows`` / ``worst_images``: per content category (srdeploy.data.categories) and the images
  that lost the most against fp32;
- ``multi_tier``: whether tier columns mean anything (one tier: they do not).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from srdeploy.data.categories import UNCATEGORISED
from srdeploy.validate.breakdown import by_category, drops_vs_fp32, worst_by_image

# threshold key -> (what is measured, "max" or "min")
THRESHOLDS = {
    "max_psnr_drop_db": ("mean Y-PSNR drop vs fp32", "max"),
    "max_image_psnr_drop_db": ("worst image Y-PSNR drop vs fp32", "max"),
    "min_psnr_db": ("mean Y-PSNR vs HR", "min"),
    "min_agreement_db": ("simulation vs deployment agreement (worst image)", "min"),
}


@dataclass(frozen=True)
class Check:
    execution: str
    threshold: str  # key of THRESHOLDS
    what: str
    value: float | None
    limit: float
    margin: float | None  # > 0: room left; < 0: by how much it fails
    passed: bool

    @property
    def relation(self) -> str:
        return "<=" if THRESHOLDS[self.threshold][1] == "max" else ">="


def deployments(report: Mapping[str, Any]) -> list[str]:
    return [s["execution"] for s in report.get("summary", []) if s.get("kind") == "deployment"]


def image_drops(report: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    """(image, execution) -> Y-PSNR drop vs fp32 (dB) for every non-fp32 row."""
    return drops_vs_fp32((r["image"], r["execution"], r["psnr_y"]) for r in report.get("images", []))


def _value(report: Mapping[str, Any], summary: Mapping[str, Any], key: str) -> float | None:
    if key == "max_psnr_drop_db":
        return summary.get("psnr_drop_db")
    if key == "min_psnr_db":
        return summary.get("psnr_y")
    if key == "min_agreement_db":
        return summary.get("agreement_min_db")
    drops = [d for (_, ex), d in image_drops(report).items() if ex == summary["execution"]]
    return max(drops) if drops else None


def failed_keys(report: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(execution, threshold key) of every failure the verdict recorded (``failed_checks`` of report.json)."""
    out = set()
    for f in report.get("failed_checks", []):
        per_image = f.get("image") != "(mean)"
        key = {"psnr_y": "min_psnr_db", "agreement_db": "min_agreement_db"}.get(f["metric"])
        out.add((f["execution"], key or ("max_image_psnr_drop_db" if per_image else "max_psnr_drop_db")))
    return out


def threshold_checks(report: Mapping[str, Any]) -> list[Check]:
    failed = failed_keys(report)
    out = []
    for s in report.get("summary", []):
        if s.get("kind") != "deployment":
            continue
        for key, (what, sense) in THRESHOLDS.items():
            limit = report.get("thresholds", {}).get(key)
            if limit is None:
                continue
            value = _value(report, s, key)
            margin = None if value is None else (limit - value if sense == "max" else value - limit)
            passed = (s["execution"], key) not in failed
            out.append(Check(s["execution"], key, what, value, float(limit), margin, passed))
    return out


def categories_of(report: Mapping[str, Any]) -> dict[str, str]:
    return dict(report.get("categories") or {})


def category_rows(report: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Per category: image count, fp32 mean Y-PSNR, mean and worst drop per deployment."""
    deps = deployments(report)
    drops = image_drops(report)
    fp32 = {r["image"]: r["psnr_y"] for r in report.get("images", []) if r["execution"] == "fp32"}
    columns = ["category", "images", "fp32 Y-PSNR"]
    columns += [c for d in deps for c in (f"{d} mean drop", f"{d} worst drop")]
    rows = []
    for cat, images in by_category(fp32, categories_of(report)).items():
        row: list[Any] = [cat, len(images), sum(fp32[i] for i in images) / len(images)]
        for d in deps:
            vals = [drops[(i, d)] for i in images if (i, d) in drops]
            row += [sum(vals) / len(vals), max(vals)] if vals else [None, None]
        rows.append(row)
    return columns, rows


def worst_images(report: Mapping[str, Any], count: int = 5) -> tuple[list[str], list[list[Any]]]:
    """The images that lost the most Y-PSNR against fp32 in any deployment, worst first."""
    cats = categories_of(report)
    rows = {(r["image"], r["execution"]): r for r in report.get("images", [])}
    columns = ["image", "category", "fp32 Y-PSNR", "worst execution", "Y-PSNR", "drop vs fp32", "agreement dB"]
    out = []
    for image, drop, ex in worst_by_image(image_drops(report), deployments(report))[:count]:
        r = rows[(image, ex)]
        fp32 = rows.get((image, "fp32"), {}).get("psnr_y")
        out.append([image, cats.get(image, UNCATEGORISED), fp32, ex, r["psnr_y"], drop, r.get("agreement_db")])
    return columns, out


def multi_tier(report: Mapping[str, Any]) -> bool:
    return len(report.get("quantization", {}).get("tiers", [])) > 1
