"""compare_runners: Polygraphy's Comparator (PSNR, SNR) on srdeploy runners, on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from srtest import exported, make_plan, params, patches, tiny_edsr

from srdeploy.backends.comparator import compare_runners
from srdeploy.backends.ort import OrtRunner
from srdeploy.errors import DataError
from srdeploy.passes.rewrite import rewrite


class Offset:
    """Another runner's output plus a constant: PSNR and SNR are known in closed form."""

    def __init__(self, runner: OrtRunner, delta: float) -> None:
        self.name, self.runner, self.delta = f"offset{delta}", runner, delta

    def infer(self, x: np.ndarray) -> np.ndarray:
        return self.runner.infer(x) + np.float32(self.delta)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("cmp")
    model = tiny_edsr()
    fp32, g = exported(model, tmp)
    plan = make_plan(model, (fp32, g), weight_bits=8, act_bits=8, method="minmax")
    trt_model, _ = rewrite(fp32, plan, "trt", 0, params(model, plan))
    onnx.save(trt_model, tmp / "trt.onnx")
    return tmp / "fp32.onnx", tmp / "trt.onnx"


def test_psnr_and_snr_are_polygraphys_closed_form(graphs) -> None:
    ref = OrtRunner(graphs[0], name="fp32")
    batches = [patches(2, 16, seed=s) for s in (1, 2)]
    agreement = compare_runners(ref, Offset(ref, 0.01), batches, psnr_db=30.0, snr_db=20.0)
    for x, psnr, snr in zip(batches, agreement.psnr_db, agreement.snr_db, strict=True):
        y = ref.infer(x).astype(np.float64)
        assert psnr == pytest.approx(20 * np.log10(y.max()) - 20 * np.log10(0.01), abs=1e-3)
        assert snr == pytest.approx(10 * np.log10(np.mean(y**2) / 0.01**2), abs=1e-3)
    assert agreement.passed and agreement.min_psnr_db == min(agreement.psnr_db)
    worse = compare_runners(ref, Offset(ref, 0.1), batches, psnr_db=30.0, snr_db=20.0)
    assert not worse.passed and worse.min_psnr_db < 30.0
    assert "DISAGREE" in worse.text() and worse.as_dict()["thresholds"] == {"psnr_db": 30.0, "snr_db": 20.0}


def test_int8_trt_graph_against_fp32_in_onnx_runtime(graphs) -> None:
    ref, cand = OrtRunner(graphs[0], name="fp32"), OrtRunner(graphs[1], name="trt-int8")
    batches = [patches(2, 24, seed=3)]
    loose = compare_runners(ref, cand, batches, psnr_db=20.0, snr_db=10.0)
    y, z = ref.infer(batches[0]).astype(np.float64), cand.infer(batches[0]).astype(np.float64)
    assert loose.psnr_db[0] == pytest.approx(20 * np.log10(y.max()) - 10 * np.log10(np.mean((y - z) ** 2)), abs=1e-3)
    assert loose.passed, loose.text()
    strict = compare_runners(ref, cand, batches, psnr_db=120.0, snr_db=10.0)  # INT8 is not that exact
    assert not strict.passed and strict.candidate == "trt-int8"


def test_identical_runners_agree_perfectly_even_with_the_same_name(graphs) -> None:
    a, b = OrtRunner(graphs[0], name="same"), OrtRunner(graphs[0], name="same")
    agreement = compare_runners(a, b, [patches(1, 16)])
    assert agreement.passed and agreement.psnr_db == (float("inf"),)


def test_no_batches_is_refused(graphs) -> None:
    ref = OrtRunner(graphs[0])
    with pytest.raises(DataError, match="no batches"):
        compare_runners(ref, ref, [])
