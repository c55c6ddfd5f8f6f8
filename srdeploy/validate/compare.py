"""Run the executions of a plan on evaluation images and measure them.

Executions: the fp32 reference (PyTorch), the plan's simulation per profile (PyTorch), and each
deployed graph (ONNX Runtime; TensorRT engines where present). Each image (or each tile, with
``tile``) is routed to a precision tier by the plan's selector; a deployment and its simulation
use the same routing, so their agreement isolates rewrite/backend error from quantization error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from srdeploy.backends.base import Runner
from srdeploy.calib.complexity import complexity
from srdeploy.data.degrade import bicubic_upscale
from srdeploy.data.sets import SRPair
from srdeploy.errors import ValidationFailed
from srdeploy.quant.plan import Selector
from srdeploy.runtime.padding import run_padded
from srdeploy.runtime.tiling import upscale_tiled
from srdeploy.size_rules import NO_RULES, SizeRules
from srdeploy.validate.metrics import max_abs_error, psnr_float, psnr_rgb, psnr_y, ssim_y

DEFAULT_OVERLAP = 16


@dataclass(frozen=True)
class Execution:
    name: str
    kind: str  # reference | simulation | deployment
    runners: Mapping[int, Runner]  # tier -> runner
    profile: str | None = None
    simulation: str | None = None  # deployments: the simulation execution they must agree with
    note: str = ""


@dataclass(frozen=True)
class ImageRow:
    image: str
    execution: str
    tiers: dict[int, int]  # tier -> number of images/tiles routed there
    psnr_y: float
    ssim_y: float
    psnr_rgb: float
    psnr_vs_fp32: float | None
    max_err_vs_fp32: float | None
    agreement_db: float | None = None
    agreement_max_err: float | None = None


@dataclass
class Comparison:
    rows: list[ImageRow] = field(default_factory=list)
    bicubic: dict[str, tuple[float, float]] = field(default_factory=dict)  # image -> (psnr_y, ssim_y)

    def for_execution(self, name: str) -> list[ImageRow]:
        return [r for r in self.rows if r.execution == name]

    def mean(self, name: str, attr: str) -> float | None:
        """Mean over images; an infinite PSNR (identical outputs, e.g. the float tier's simulation against
        fp32) is left out of the mean of the finite ones, and is the mean only when every image is one."""
        values = [getattr(r, attr) for r in self.for_execution(name)]
        values = [v for v in values if v is not None]
        finite = [v for v in values if np.isfinite(v)]
        return float(np.mean(finite or values)) if values else None

    def drops(self) -> dict[tuple[str, str], float]:
        """(image, execution) -> Y-PSNR drop vs fp32 (validate/breakdown.py)."""
        from srdeploy.validate.breakdown import drops_vs_fp32

        return drops_vs_fp32((r.image, r.execution, r.psnr_y) for r in self.rows)

    def tier_usage(self, name: str) -> dict[int, int]:
        total: Counter[int] = Counter()
        for r in self.for_execution(name):
            total.update(r.tiers)
        return dict(sorted(total.items()))


def make_router(selector: Selector | None, default_tier: int) -> Callable[[np.ndarray], int]:
    if selector is None:
        return lambda _x: default_tier
    return lambda x: selector.route(float(complexity(x)[0]))


def run_execution(
    execution: Execution,
    lr: np.ndarray,
    scale: int,
    router: Callable[[np.ndarray], int],
    tile: int | None,
    overlap: int = DEFAULT_OVERLAP,
    rules: SizeRules = NO_RULES,
) -> tuple[np.ndarray, dict[int, int]]:
    """lr (H,W,3) -> SR (sH,sW,3) float32 and tier usage. Every execution (PyTorch too) runs the image or tile
    padded to the graphs' size ``rules`` and cropped, as the app runtime does (runtime/padding.py)."""
    chw = np.ascontiguousarray(lr.transpose(2, 0, 1), dtype=np.float32)

    def infer(batch: np.ndarray, tier: int) -> np.ndarray:
        runner = execution.runners.get(tier) or execution.runners[min(execution.runners)]
        return run_padded(runner.infer, batch, rules, scale)

    if tile:
        route = router if len(execution.runners) > 1 else (lambda _x: min(execution.runners))
        out, stats = upscale_tiled(chw, scale, infer, tile, overlap, route=route)
        return out.transpose(1, 2, 0), stats.tiles_per_tier
    tier = router(chw) if len(execution.runners) > 1 else min(execution.runners)
    return infer(chw[None], tier)[0].transpose(1, 2, 0), {tier: 1}


def compare(
    pairs: Sequence[SRPair],
    executions: Sequence[Execution],
    scale: int,
    selector: Selector | None = None,
    default_tier: int = 0,
    tile: int | None = None,
    progress: Callable[[int], None] | None = None,
    overlap: int = DEFAULT_OVERLAP,
    rules: SizeRules = NO_RULES,
) -> Comparison:
    router = make_router(selector, default_tier)
    result = Comparison()
    for i, pair in enumerate(pairs):
        bic = bicubic_upscale(pair.lr, scale)
        result.bicubic[pair.name] = (psnr_y(bic, pair.hr, scale), ssim_y(bic, pair.hr, scale))
        outputs: dict[str, np.ndarray] = {}
        for ex in executions:
            sr, tiers = run_execution(ex, pair.lr, scale, router, tile, overlap, rules)
            if not np.all(np.isfinite(sr)):
                raise ValidationFailed(
                    f"{ex.name} produced NaN/Inf on image {pair.name}",
                    "the model overflows: check the checkpoint, or quantize fewer layers (quant.quantize_roles)",
                )
            outputs[ex.name] = sr
            ref = outputs.get("fp32")
            sim = outputs.get(ex.simulation) if ex.simulation else None
            result.rows.append(
                ImageRow(
                    image=pair.name,
                    execution=ex.name,
                    tiers=tiers,
                    psnr_y=psnr_y(sr, pair.hr, scale),
                    ssim_y=ssim_y(sr, pair.hr, scale),
                    psnr_rgb=psnr_rgb(sr, pair.hr, scale),
                    psnr_vs_fp32=None if ref is None or ex.name == "fp32" else psnr_float(sr, ref),
                    max_err_vs_fp32=None if ref is None or ex.name == "fp32" else max_abs_error(sr, ref),
                    agreement_db=None if sim is None else psnr_float(sr, sim),
                    agreement_max_err=None if sim is None else max_abs_error(sr, sim),
                )
            )
        if progress:
            progress(i + 1)
    return result
