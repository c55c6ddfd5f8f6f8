"""Agreement of two runners on the same batches, judged by Polygraphy's Comparator (PSNR and SNR).

Any two srdeploy runners (``infer(x) -> y``): TensorRT vs ONNX Runtime on one graph, an engine vs
the fp32 model. Their outputs go into Polygraphy ``RunResults`` and ``Comparator.compare_accuracy``
runs ``PsnrCompareFunc`` and ``SnrCompareFunc`` on every batch. Polygraphy's PSNR uses the
reference output's maximum as the peak (1.0 for an SR output in [0, 1] with a white pixel); SNR is
10 log10(mean ref^2 / mean (ref - out)^2). Runs on the CPU: nothing here needs TensorRT.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from srdeploy.backends.base import Runner
from srdeploy.errors import DataError

OUTPUT = "output"


@dataclass(frozen=True)
class Agreement:
    reference: str
    candidate: str
    psnr_db: tuple[float, ...]  # per batch
    snr_db: tuple[float, ...]
    min_psnr_db: float
    min_snr_db: float
    passed: bool
    min_psnr_db_required: float = 0.0
    min_snr_db_required: float = 0.0

    def text(self) -> str:
        verdict = "agree" if self.passed else "DISAGREE"
        return (
            f"{self.candidate} vs {self.reference}: {verdict} over {len(self.psnr_db)} batch(es); "
            f"worst PSNR {self.min_psnr_db:.2f} dB (>= {self.min_psnr_db_required:.1f}), "
            f"worst SNR {self.min_snr_db:.2f} dB (>= {self.min_snr_db_required:.1f})"
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(
            reference=self.reference,
            candidate=self.candidate,
            psnr_db=list(self.psnr_db),
            snr_db=list(self.snr_db),
            min_psnr_db=self.min_psnr_db,
            min_snr_db=self.min_snr_db,
            thresholds=dict(psnr_db=self.min_psnr_db_required, snr_db=self.min_snr_db_required),
            passed=self.passed,
        )


def _run_results(runners: tuple[Runner, Runner], names: tuple[str, str], batches: list[np.ndarray]) -> Any:
    from polygraphy.comparator import IterationResult, RunResults

    results = RunResults()
    for runner, name in zip(runners, names, strict=True):
        iterations = [
            IterationResult(outputs={OUTPUT: np.asarray(runner.infer(x), dtype=np.float32)}, runner_name=name)
            for x in batches
        ]
        results.append((name, iterations))
    return results


def compare_runners(
    reference: Runner,
    candidate: Runner,
    batches: Iterable[np.ndarray],
    psnr_db: float = 30.0,
    snr_db: float = 20.0,
) -> Agreement:
    """Run both on every batch; pass when every batch reaches ``psnr_db`` and ``snr_db``."""
    from polygraphy.comparator import Comparator, PsnrCompareFunc, SnrCompareFunc

    from srdeploy.backends.trt_loaders import captured_log

    batches = list(batches)
    if not batches:
        raise DataError("no batches to compare", "pass at least one (N,3,H,W) float32 batch")
    names = (f"ref:{reference.name}", f"cand:{candidate.name}")  # distinct even when both runners share a name
    run_results = _run_results((reference, candidate), names, batches)
    funcs = [PsnrCompareFunc(psnr_threshold=psnr_db), SnrCompareFunc(snr_threshold=snr_db)]
    with captured_log():  # Comparator logs every check at INFO
        psnr_result, snr_result = Comparator.compare_accuracy(run_results, compare_func=funcs)
    psnr = tuple(float(it[OUTPUT].psnr) for it in psnr_result[names])
    snr = tuple(float(it[OUTPUT].snr) for it in snr_result[names])
    return Agreement(
        reference=reference.name,
        candidate=candidate.name,
        psnr_db=psnr,
        snr_db=snr,
        min_psnr_db=min(psnr),
        min_snr_db=min(snr),
        passed=bool(psnr_result) and bool(snr_result),
        min_psnr_db_required=psnr_db,
        min_snr_db_required=snr_db,
    )
