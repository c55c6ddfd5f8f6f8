"""Validation report: one dict (report.json); rendered by report_md (report.md), report_html (report.html)
and here as JUnit XML."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from srdeploy.errors import SrdeployError
from srdeploy.profiles import get_profile
from srdeploy.quant.plan import QuantPlan
from srdeploy.recipe import Thresholds
from srdeploy.validate.compare import Comparison, Execution
from srdeploy.validate.verdict import Failure

EMULATION_NOTE = (
    "Sub-8-bit layers are emulated: TensorRT and ONNX Runtime convolutions compute in INT8, so "
    "b-bit values sit on a b-bit grid inside INT8 Q/DQ (trt) or behind INT4/INT8 DequantizeLinear "
    "weights (ort). The accuracy is that of the b-bit model; the speed at best that of INT8 (ONNX "
    "Runtime convolves INT4-stored weights in float: docs/BENCHMARKS.md, W4A4 latency per tier)."
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
    notes: Sequence[str] = (),
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    bic = list(comparison.bicubic.values())
    return dict(
        **header,
        verdict="pass" if not failures else "fail",
        failures=[f.message for f in failures],
        failed_checks=[
            dict(execution=f.execution, image=f.image, metric=f.metric, value=_r(f.value, 4), limit=f.limit)
            for f in failures
        ],
        warnings=list(warnings),
        thresholds=thresholds.model_dump(),
        bicubic=dict(
            psnr_y=_r(sum(b[0] for b in bic) / len(bic)) if bic else None,
            ssim_y=_r(sum(b[1] for b in bic) / len(bic), 4) if bic else None,
        ),
        summary=summarize(comparison, executions),
        images=per_image(comparison),
        notes=list(notes),
        **dict(extra or {}),
    )


BACKEND_NAMES = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO", "tensorrt": "TensorRT"}


def applicable_notes(plan: QuantPlan) -> list[str]:
    """The notes this build needs: the emulation note only where some weight or activation is below 8 bits."""
    bits = [plan.weights[x.weight].bits for x in plan.quantized_layers()]
    bits += [spec.bits for t in plan.tiers for specs in t.activations.values() for spec in specs.values()]
    notes = [EMULATION_NOTE] if any(b < 8 for b in bits) else []
    float_stream = [plan.tier(t) for t in plan.bits.float_residual_tiers]
    if float_stream:
        names = ", ".join(f"{t.index} ({t.name})" for t in float_stream)
        notes.append(
            f"Tier {names}: the residual stream stays float (no Q/DQ on residual-Add skips and on the conv "
            "outputs that are residual branches; quant.adaptive.high_tier_float_residuals)."
        )
    return notes


def execution_label(execution: str, profile: str | None) -> str:
    """``onnxruntime:trt`` -> "onnxruntime:trt: trt-profile graph run by ONNX Runtime, not TensorRT"."""
    backend = execution.partition(":")[0]
    if not profile or backend not in BACKEND_NAMES:
        return execution
    label = f"{execution}: {profile}-profile graph run by {BACKEND_NAMES[backend]}"
    try:
        primary = get_profile(profile).backends[0]
    except SrdeployError:
        return label
    return label if primary == backend else f"{label}, not {BACKEND_NAMES.get(primary, primary)}"


def render_junit(report: Mapping[str, Any]) -> str:
    """One test case per deployed execution, named for what ran it; a failure element per threshold failure."""
    name = report.get("recipe", {}).get("name", "srdeploy")
    cases = []
    deployed = [s for s in report["summary"] if s["kind"] == "deployment"]
    for s in deployed:
        fails = [f for f in report["failures"] if f.startswith(f"{s['execution']}:")]
        body = "".join(f"<failure message={quoteattr(f)}>{escape(f)}</failure>" for f in fails)
        if s.get("note"):
            body += f"<system-out>{escape(s['note'])}</system-out>"
        label = execution_label(s["execution"], s.get("profile"))
        cases.append(f"  <testcase classname={quoteattr(name)} name={quoteattr(label)}>{body}</testcase>")
    n_fail = sum(1 for s in deployed if any(f.startswith(f"{s['execution']}:") for f in report["failures"]))
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<testsuite name={quoteattr("srdeploy validate " + name)} tests="{len(cases)}" failures="{n_fail}">\n'
        + "\n".join(cases)
        + "\n</testsuite>\n"
    )
