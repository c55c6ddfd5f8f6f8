"""Validation report: one dict (report.json), rendered as Markdown (report.md) and JUnit XML."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from srdeploy.recipe import Thresholds
from srdeploy.validate.compare import Comparison, Execution
from srdeploy.validate.verdict import Failure

EMULATION_NOTE = (
    "Sub-8-bit layers are emulated: TensorRT and ONNX Runtime convolutions compute in INT8, so "
    "b-bit values sit on a b-bit grid inside INT8 Q/DQ (trt) or behind INT4/INT8 DequantizeLinear "
    "weights (ort). The accuracy is that of the b-bit model; the speed is that of INT8."
)


def _r(x: float | None, nd: int = 3) -> float | None:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return None if x is None else (1e9 if x > 0 else -1e9)
    return round(float(x), nd)


def summarize(comparison: Comparison, executions: Sequence[Execution]) -> list[dict[str, Any]]:
    fp32_mean = comparison.mean("fp32", "psnr_y")
    out = []
    for ex in executions:
        rows = comparison.for_execution(ex.name)
        if not rows:
            continue
        mean_psnr = comparison.mean(ex.name, "psnr_y")
        agree = [r.agreement_db for r in rows if r.agreement_db is not None]
        agree_err = [r.agreement_max_err for r in rows if r.agreement_max_err is not None]
        out.append(
            dict(
                execution=ex.name,
                kind=ex.kind,
                profile=ex.profile,
                note=ex.note,
                psnr_y=_r(mean_psnr),
                ssim_y=_r(comparison.mean(ex.name, "ssim_y"), 4),
                psnr_rgb=_r(comparison.mean(ex.name, "psnr_rgb")),
                psnr_drop_db=None if fp32_mean is None or ex.name == "fp32" else _r(fp32_mean - (mean_psnr or 0.0)),
                psnr_vs_fp32=_r(comparison.mean(ex.name, "psnr_vs_fp32"), 2),
                max_err_vs_fp32=_r(max((r.max_err_vs_fp32 or 0.0) for r in rows), 5) if ex.name != "fp32" else None,
                agreement_min_db=_r(min(agree), 2) if agree else None,
                agreement_max_err=_r(max(agree_err), 5) if agree_err else None,
                tier_usage={str(k): v for k, v in comparison.tier_usage(ex.name).items()},
            )
        )
    return out


def per_image(comparison: Comparison) -> list[dict[str, Any]]:
    return [
        dict(
            image=r.image,
            execution=r.execution,
            tiers={str(k): v for k, v in r.tiers.items()},
            psnr_y=_r(r.psnr_y),
            ssim_y=_r(r.ssim_y, 4),
            psnr_rgb=_r(r.psnr_rgb),
            psnr_vs_fp32=_r(r.psnr_vs_fp32, 2),
            max_err_vs_fp32=_r(r.max_err_vs_fp32, 5),
            agreement_db=_r(r.agreement_db, 2),
            agreement_max_err=_r(r.agreement_max_err, 5),
        )
        for r in comparison.rows
    ]


def build_report(
    *,
    header: Mapping[str, Any],
    comparison: Comparison,
    executions: Sequence[Execution],
    thresholds: Thresholds,
    failures: Sequence[Failure],
    extra: Mapping[str, Any] | None = None,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    bic = list(comparison.bicubic.values())
    return dict(
        **header,
        verdict="pass" if not failures else "fail",
        failures=[f.message for f in failures],
        warnings=list(warnings),
        thresholds=thresholds.model_dump(),
        bicubic=dict(
            psnr_y=_r(sum(b[0] for b in bic) / len(bic)) if bic else None,
            ssim_y=_r(sum(b[1] for b in bic) / len(bic), 4) if bic else None,
        ),
        summary=summarize(comparison, executions),
        images=per_image(comparison),
        notes=[EMULATION_NOTE],
        **dict(extra or {}),
    )


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _verdict_lines(report: Mapping[str, Any]) -> list[str]:
    lines = [f"# srdeploy report: {report.get('recipe', {}).get('name', '')}", ""]
    lines.append(f"**Verdict: {report['verdict'].upper()}**")
    lines += [f"- {f}" for f in report["failures"]]
    lines += [f"- **{w}**" for w in report.get("warnings", [])]
    m = report.get("model", {})
    lines.append("")
    lines.append(
        f"Model: `{m.get('name')}` ({m.get('arch')}, x{m.get('scale')}); recipe digest "
        f"`{report.get('recipe', {}).get('digest')}`; dataset `{report.get('dataset')}` "
        f"({report.get('images_evaluated')} images); srdeploy {report.get('srdeploy_version')}."
    )
    return lines


def render_markdown(report: Mapping[str, Any]) -> str:
    lines = _verdict_lines(report)
    q = report.get("quantization", {})
    if q:
        lines.append("")
        lines.append(
            f"Quantization: {q.get('method')}, W{q.get('weight_bits')}A{q.get('act_bits')}; "
            f"FAB {_fmt(q.get('fab'))}; BitOPs {_fmt(q.get('bitops_g'))} G at 1280x720; model size "
            f"{_fmt(q.get('model_size_kb'), 1)} KB (fp32 {_fmt(q.get('fp32_size_kb'), 1)} KB); "
            f"calibration {_fmt(q.get('calibration_seconds'), 1)} s."
        )
    lines += [
        "",
        "| execution | Y-PSNR | SSIM | RGB PSNR | drop vs fp32 | PSNR vs fp32 | sim agreement (min dB) | tiers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    b = report.get("bicubic", {})
    lines.append(f"| bicubic | {_fmt(b.get('psnr_y'))} | {_fmt(b.get('ssim_y'), 4)} | – | – | – | – | – |")
    for s in report["summary"]:
        tiers = ", ".join(f"{k}:{v}" for k, v in s["tier_usage"].items())
        lines.append(
            f"| {s['execution']} | {_fmt(s['psnr_y'])} | {_fmt(s['ssim_y'], 4)} | {_fmt(s['psnr_rgb'])} | "
            f"{_fmt(s['psnr_drop_db'], 3)} | {_fmt(s['psnr_vs_fp32'])} | {_fmt(s['agreement_min_db'])} | {tiers} |"
        )
    notes = [s for s in report["summary"] if s.get("note")]
    if notes:
        lines.append("")
        for s in notes:
            lines.append(f"- `{s['execution']}`: {s['note']}")
    for section in ("artifacts", "ort_fusion", "trt_lint", "tensorrt", "sparsity", "equalization", "refinement"):
        if report.get(section):
            lines += ["", f"## {section.replace('_', ' ')}", "", "```", _dump(report[section]), "```"]
    if report.get("visuals"):
        lines += [
            "",
            "## Visual check",
            "",
            "Crops where the deployed output differs most from fp32 (worst images first); per-layer bits.",
            "",
        ]
        lines += [f"![{k}]({v})" for k, v in report["visuals"].items()]
    lines += [
        "",
        "## Per image",
        "",
        "| image | execution | tiers | Y-PSNR | SSIM | vs fp32 dB | agreement dB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["images"]:
        tiers = ", ".join(f"{k}:{v}" for k, v in r["tiers"].items())
        lines.append(
            f"| {r['image']} | {r['execution']} | {tiers} | {_fmt(r['psnr_y'])} | {_fmt(r['ssim_y'], 4)} | "
            f"{_fmt(r['psnr_vs_fp32'])} | {_fmt(r['agreement_db'])} |"
        )
    lines += ["", "## Notes", ""] + [f"- {n}" for n in report.get("notes", [])]
    return "\n".join(lines) + "\n"


def _dump(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=1, sort_keys=True)


def render_junit(report: Mapping[str, Any]) -> str:
    """One test case per deployed execution; a failure element per threshold failure."""
    name = report.get("recipe", {}).get("name", "srdeploy")
    cases = []
    deployed = [s for s in report["summary"] if s["kind"] == "deployment"]
    for s in deployed:
        fails = [f for f in report["failures"] if f.startswith(f"{s['execution']}:")]
        body = "".join(f"<failure message={quoteattr(f)}>{escape(f)}</failure>" for f in fails)
        cases.append(f"  <testcase classname={quoteattr(name)} name={quoteattr(s['execution'])}>{body}</testcase>")
    n_fail = sum(1 for s in deployed if any(f.startswith(f"{s['execution']}:") for f in report["failures"]))
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<testsuite name={quoteattr("srdeploy validate " + name)} tests="{len(cases)}" failures="{n_fail}">\n'
        + "\n".join(cases)
        + "\n</testsuite>\n"
    )
