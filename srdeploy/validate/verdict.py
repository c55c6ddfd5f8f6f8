"""Thresholds -> failures. Each failure names the execution, the image, the metric and the margin."""

from __future__ import annotations

from dataclasses import dataclass

from srdeploy.recipe import Thresholds
from srdeploy.validate.compare import Comparison, ImageRow


@dataclass(frozen=True)
class Failure:
    execution: str
    image: str  # "(mean)" for set-level checks
    metric: str
    value: float
    limit: float
    message: str


def _mean_checks(name: str, drops: list[float], mean_psnr: float | None, t: Thresholds) -> list[Failure]:
    out = []
    if t.max_psnr_drop_db is not None and drops:
        mean_drop = sum(drops) / len(drops)
        if mean_drop > t.max_psnr_drop_db:
            msg = f"{name}: mean Y-PSNR drop vs fp32 {mean_drop:.3f} dB > {t.max_psnr_drop_db} dB"
            out.append(Failure(name, "(mean)", "psnr_drop_db", mean_drop, t.max_psnr_drop_db, msg))
    if t.min_psnr_db is not None and mean_psnr is not None and mean_psnr < t.min_psnr_db:
        msg = f"{name}: mean Y-PSNR {mean_psnr:.3f} dB < {t.min_psnr_db} dB"
        out.append(Failure(name, "(mean)", "psnr_y", mean_psnr, t.min_psnr_db, msg))
    return out


def _image_checks(name: str, r: ImageRow, drop: float | None, t: Thresholds) -> list[Failure]:
    out = []
    limit = t.max_image_psnr_drop_db
    if limit is not None and drop is not None and drop > limit:
        msg = f"{name}: image {r.image}: Y-PSNR drop {drop:.3f} dB > {limit} dB (by {drop - limit:.3f} dB)"
        out.append(Failure(name, r.image, "psnr_drop_db", drop, limit, msg))
    agree = t.min_agreement_db
    if agree is not None and r.agreement_db is not None and r.agreement_db < agree:
        msg = (
            f"{name}: image {r.image}: simulation vs deployment {r.agreement_db:.1f} dB < {agree} dB (max abs error "
            f"{r.agreement_max_err:.4f}); the rewrite or backend does not compute what the plan says"
        )
        out.append(Failure(name, r.image, "agreement_db", r.agreement_db, agree, msg))
    return out


def check(comparison: Comparison, deployments: list[str], t: Thresholds) -> list[Failure]:
    failures: list[Failure] = []
    fp32 = {r.image: r.psnr_y for r in comparison.for_execution("fp32")}
    for name in deployments:
        rows = comparison.for_execution(name)
        if not rows:
            continue
        drops = {r.image: fp32[r.image] - r.psnr_y for r in rows if r.image in fp32}
        failures += _mean_checks(name, list(drops.values()), comparison.mean(name, "psnr_y"), t)
        for r in rows:
            failures += _image_checks(name, r, drops.get(r.image), t)
    return failures


def sanity_check(comparison: Comparison, t: Thresholds, reference: str = "hr") -> tuple[list[Failure], list[str]]:
    """(failures, warnings) for a checkpoint whose fp32 output is clearly worse than bicubic against HR.

    Such a model does not super-resolve these images (random or wrong weights, a wrong scale or rgb_range), and
    its deployment agreeing with it proves nothing. With ``reference: hr`` that fails validation; with
    ``reference: fp32`` (GAN/perceptual models, judged against their own fp32 output) it is a loud warning."""
    margin = t.max_fp32_below_bicubic_db
    fp32 = comparison.mean("fp32", "psnr_y")
    bic = [b[0] for b in comparison.bicubic.values()]
    if margin is None or fp32 is None or not bic:
        return [], []
    bicubic = sum(bic) / len(bic)
    if fp32 >= bicubic - margin:
        return [], []
    what = (
        f"fp32: mean Y-PSNR against HR {fp32:.2f} dB is {bicubic - fp32:.2f} dB below bicubic ({bicubic:.2f} dB, "
        f"allowed {margin} dB): the checkpoint does not super-resolve these images (random or wrong weights, "
        "wrong scale or rgb_range?)"
    )
    if reference == "fp32":
        return [], [f"warning: {what}; validate.reference is fp32, so this does not fail the build"]
    hint = "; for a GAN/perceptual model judged against its fp32 output set validate.reference: fp32"
    return [Failure("fp32", "(mean)", "fp32_below_bicubic_db", bicubic - fp32, margin, what + hint)], []
