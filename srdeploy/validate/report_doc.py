"""A report.json as a list of blocks, in reading order; report_md and report_html render the same list."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srdeploy.validate import report_facts as facts
from srdeploy.validate.report_blocks import Block, Bullets, Figure, Heading, Para, Table, Verdict, fmt, signed, table
from srdeploy.validate.report_sections import section_blocks

BITOPS_UNIT = (
    "BitOPs count a b_w-bit x b_a-bit multiply-accumulate as (b_w/32)(b_a/32) of an fp32 MAC, float layers "
    "as 1, at a 1280x720 HR output (G = 1e9 fp32-MAC equivalents)"
)


def _tiers(usage: Mapping[str, Any], report: Mapping[str, Any]) -> str:
    """'tier 0 (base): 39, tier 1 (float): 2' from the report's usage counts and tier names."""
    names = {str(t["index"]): t["name"] for t in report.get("quantization", {}).get("tiers", [])}
    return ", ".join(
        f"tier {k} ({names[str(k)]}): {v}" if str(k) in names else f"tier {k}: {v}" for k, v in usage.items()
    )


def verdict_blocks(report: Mapping[str, Any]) -> list[Block]:
    checks = facts.threshold_checks(report)
    rows = [
        [
            c.execution,
            c.what,
            f"{c.relation} {fmt(c.limit, 3)}",
            fmt(c.value, 3),
            signed(c.margin),
            "pass" if c.passed else "FAIL",
        ]
        for c in checks
    ]
    out: list[Block] = [Verdict(report.get("verdict") == "pass", list(report.get("failures", [])))]
    if rows:
        t = Table(
            ["execution", "check", "threshold", "value", "margin", "result"],
            rows,
            "Margin: how far each value is from its threshold (positive: room left; negative: fails by).",
            {i: "pass" if c.passed else "fail" for i, c in enumerate(checks)},
        )
        out.append(t)
    else:
        out.append(Para("No thresholds set: the verdict passes by default."))
    if report.get("warnings"):
        out.append(Bullets([f"Warning: {w}" for w in report["warnings"]]))
    return out


def about_blocks(report: Mapping[str, Any]) -> list[Block]:
    m, rec = report.get("model", {}), report.get("recipe", {})
    out: list[Block] = [
        Para(
            f"Model {m.get('name')} ({m.get('arch')}, x{m.get('scale')}); recipe digest {rec.get('digest')}; "
            f"dataset {report.get('dataset')} ({report.get('images_evaluated')} images); srdeploy "
            f"{report.get('srdeploy_version')}; validated in {fmt(report.get('validation_seconds'), 1)} s."
        )
    ]
    q = report.get("quantization", {})
    if q:
        tiers = "" if not facts.multi_tier(report) else f"; {len(q['tiers'])} tiers"
        out.append(
            Para(
                f"Quantization: {q.get('method')}, W{q.get('weight_bits')}A{q.get('act_bits')}{tiers}; "
                f"{q.get('quantized_layers')} of {q.get('layers')} convs quantized; FAB {fmt(q.get('fab'))}; "
                f"BitOPs {fmt(q.get('bitops_g'))} G (fp32 {fmt(q.get('fp32_bitops_g'))} G); model size "
                f"{fmt(q.get('model_size_kb'), 1)} KB (fp32 {fmt(q.get('fp32_size_kb'), 1)} KB); calibration "
                f"{fmt(q.get('calibration_seconds'), 1)} s. {BITOPS_UNIT}."
            )
        )
    return out


def summary_blocks(report: Mapping[str, Any]) -> list[Block]:
    tiered = facts.multi_tier(report)
    columns = ["execution", "Y-PSNR", "SSIM", "RGB PSNR", "drop vs fp32", "PSNR vs fp32", "sim agreement (min dB)"]
    b = report.get("bicubic", {})
    rows: list[list[Any]] = [["bicubic", b.get("psnr_y"), b.get("ssim_y"), None, None, None, None]]
    if tiered:
        rows[0].append(None)
    for s in report.get("summary", []):
        rows.append(
            [
                s["execution"],
                s["psnr_y"],
                s["ssim_y"],
                s["psnr_rgb"],
                s["psnr_drop_db"],
                s["psnr_vs_fp32"],
                s["agreement_min_db"],
            ]
        )
        if tiered:
            rows[-1].append(_tiers(s["tier_usage"], report))
    out: list[Block] = [
        Heading("Accuracy"),
        table(columns + (["tiers used"] if tiered else []), rows, [0, 2, 4, 2, 3, 2, 2]),
    ]
    notes = [f"{s['execution']}: {s['note']}" for s in report.get("summary", []) if s.get("note")]
    if notes:
        out.append(Bullets(notes))
    return out


def image_tables(report: Mapping[str, Any]) -> list[Block]:
    out: list[Block] = []
    columns, rows = facts.category_rows(report)
    if rows:
        out += [Heading("Per category"), table(columns, rows, [0, 0, 2] + [3] * (len(columns) - 3))]
    columns, rows = facts.worst_images(report)
    if rows:
        out += [Heading("Worst images"), table(columns, rows, [0, 0, 2, 0, 2, 3, 2])]
    return out


def visual_blocks(report: Mapping[str, Any]) -> list[Block]:
    visuals = report.get("visuals") or {}
    if not visuals:
        return []
    out: list[Block] = [
        Heading("Visual check"),
        Para(
            "Crops where the deployed output differs most from fp32, worst images first: each panel's PSNR is "
            "the crop's own (vs the HR crop); the last panel is |deployed - fp32| amplified, with its colour scale."
        ),
    ]
    for key, path in visuals.items():
        caption = (
            "Per-layer weight and activation bits; float layers in their own band, with the graph's float type"
            if key == "layers"
            else f"{key.removeprefix('crops-')}: crops where the deployed output differs most from fp32"
        )
        out.append(Figure(path, caption))
    return out


def per_image_blocks(report: Mapping[str, Any]) -> list[Block]:
    tiered = facts.multi_tier(report)
    columns = ["image", "execution", "Y-PSNR", "SSIM", "vs fp32 dB", "agreement dB"] + (["tiers"] if tiered else [])
    rows = []
    for r in report.get("images", []):
        rows.append([r["image"], r["execution"], r["psnr_y"], r["ssim_y"], r["psnr_vs_fp32"], r["agreement_db"]])
        if tiered:
            rows[-1].append(_tiers(r["tiers"], report))
    return [Heading("Per image"), table(columns, rows, [0, 0, 2, 4, 2, 2])] if rows else []


def report_blocks(report: Mapping[str, Any]) -> list[Block]:
    title = f"srdeploy report: {report.get('recipe', {}).get('name', '')}"
    blocks: list[Block] = [Heading(title, 1), *verdict_blocks(report), *about_blocks(report)]
    blocks += summary_blocks(report) + image_tables(report) + visual_blocks(report)
    blocks += section_blocks(report) + per_image_blocks(report)
    if report.get("notes"):
        blocks += [Heading("Notes"), Bullets(list(report["notes"]))]
    return blocks
