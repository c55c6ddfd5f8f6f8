"""Thresholds -> failures. Each failure names the execution, the image, the metric and the margin."""

from __future__ import annotations

from dataclasses import dataclass

from srdeploy.recipe import Thresholds
from srdeploy.validate.compare import Comparison


@dataclass(frozen=True)
class Failure:
    execution: str
    image: str  # "(mean)" for set-level checks
    metric: str
    value: float
    limit: float
    message: str


def check(comparison: Comparison, deployments: list[str], t: Thresholds) -> list[Failure]:
    failures: list[Failure] = []
    fp32 = {r.image: r for r in comparison.for_execution("fp32")}
    for name in deployments:
        rows = comparison.for_execution(name)
        if not rows:
            continue
        drops = [fp32[r.image].psnr_y - r.psnr_y for r in rows if r.image in fp32]
        if t.max_psnr_drop_db is not None and drops:
            mean_drop = sum(drops) / len(drops)
            if mean_drop > t.max_psnr_drop_db:
                failures.append(
                    Failure(
                        name,
                        "(mean)",
                        "psnr_drop_db",
                        mean_drop,
                        t.max_psnr_drop_db,
                        f"{name}: mean Y-PSNR drop vs fp32 {mean_drop:.3f} dB > {t.max_psnr_drop_db} dB",
                    )
                )
        for r in rows:
            if t.max_image_psnr_drop_db is not None and r.image in fp32:
                drop = fp32[r.image].psnr_y - r.psnr_y
                if drop > t.max_image_psnr_drop_db:
                    failures.append(
                        Failure(
                            name,
                            r.image,
                            "psnr_drop_db",
                            drop,
                            t.max_image_psnr_drop_db,
                            f"{name}: image {r.image}: Y-PSNR drop {drop:.3f} dB > {t.max_image_psnr_drop_db} dB "
                            f"(by {drop - t.max_image_psnr_drop_db:.3f} dB)",
                        )
                    )
            if t.min_agreement_db is not None and r.agreement_db is not None and r.agreement_db < t.min_agreement_db:
                failures.append(
                    Failure(
                        name,
                        r.image,
                        "agreement_db",
                        r.agreement_db,
                        t.min_agreement_db,
                        f"{name}: image {r.image}: simulation vs deployment {r.agreement_db:.1f} dB < "
                        f"{t.min_agreement_db} dB (max abs error {r.agreement_max_err:.4f}); the rewrite or backend "
                        "does not compute what the plan says",
                    )
                )
        mean_psnr = comparison.mean(name, "psnr_y")
        if t.min_psnr_db is not None and mean_psnr is not None and mean_psnr < t.min_psnr_db:
            failures.append(
                Failure(
                    name,
                    "(mean)",
                    "psnr_y",
                    mean_psnr,
                    t.min_psnr_db,
                    f"{name}: mean Y-PSNR {mean_psnr:.3f} dB < {t.min_psnr_db} dB",
                )
            )
    return failures
