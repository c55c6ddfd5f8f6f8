#!/usr/bin/env python
"""Core-pipeline benchmark (ONNX Runtime, CPU): latency, fused INT8 convs and accuracy of
srdeploy's `ort` INT8 profile against ONNX Runtime fp32, PyTorch fp32 and onnxruntime's own
quantize_static (QDQ, per-channel, U8S8, MinMax / Percentile / Entropy calibrators) calibrated on
the same patches.

    python tools/bench_ort.py --recipe recipes/int8_edsr_x4.yaml --out runs/bench_ort

Prints a Markdown table (paste into docs/BENCHMARKS.md with the command, machine and date).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import evaluate, machine, markdown_table, median_ms, save_json, torch_infer

from srdeploy.backends.ort import OrtRunner, fusion_report
from srdeploy.data.calib_inputs import calib_patches
from srdeploy.data.sets import load_pairs
from srdeploy.models.deploy_form import load_deploy_model
from srdeploy.pipeline import build
from srdeploy.recipe import load_recipe


def quantize_static_peer(fp32: Path, out: Path, patches: np.ndarray, method: str) -> tuple[Path, float]:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"input": patches[i : i + 1]} for i in range(len(patches))])

        def get_next(self) -> dict | None:
            return next(self.it, None)

    pre = out.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    t0 = time.perf_counter()
    extra = {"CalibPercentile": 99.99} if method == "Percentile" else {}
    quantize_static(
        str(pre),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=getattr(CalibrationMethod, method),
        extra_options=extra,
    )
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", type=Path, default=Path("recipes/int8_edsr_x4.yaml"))
    ap.add_argument("--out", type=Path, default=Path("runs/bench_ort"))
    ap.add_argument("--size", type=int, default=256, help="LR input size for latency")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--peers", default="MinMax,Percentile,Entropy")
    ap.add_argument("--max-images", type=int, default=None)
    args = ap.parse_args()

    recipe = load_recipe(args.recipe)
    t0 = time.perf_counter()
    result = build(recipe, args.out / "build", run_validation=False)
    build_s = time.perf_counter() - t0
    folder = result.out_dir
    model = load_deploy_model(folder)
    pairs = load_pairs(recipe.validate_.dataset, model.scale, args.max_images)
    patches = calib_patches(recipe.calib, model.scale, recipe.calib.patch_size, recipe.calib.patches, recipe.seed)
    x = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)

    candidates: list[tuple[str, Path | None, float | None]] = [
        ("PyTorch fp32", None, None),
        ("ONNX Runtime fp32", folder / "fp32.onnx", None),
        (f"srdeploy ort ({recipe.name})", folder / "ort" / "model.onnx", build_s),
    ]
    for method in [m for m in args.peers.split(",") if m]:
        path, secs = quantize_static_peer(folder / "fp32.onnx", args.out / f"qs_{method.lower()}.onnx", patches, method)
        candidates.append((f"quantize_static {method}", path, secs))

    rows = []
    fp32_psnr = None
    for name, path, secs in candidates:
        if path is None:
            infer = torch_infer(model.module)
            latency = median_ms(lambda infer=infer: infer(x), repeats=args.repeats)
            fused = quantized = None
        else:
            runner = OrtRunner(path, threads=args.threads)
            infer = runner.infer
            latency = median_ms(lambda runner=runner: runner.infer(x), repeats=args.repeats)
            rep = fusion_report(path)
            fused, quantized = rep.fused_integer_convs, rep.quantized_convs
        acc = evaluate(infer, pairs, model.scale)
        if fp32_psnr is None:
            fp32_psnr = acc["psnr_y"]
        rows.append(
            dict(
                name=name,
                latency_ms=latency,
                fused=None if fused is None else f"{fused}/{quantized}",
                psnr_y=acc["psnr_y"],
                ssim_y=acc["ssim_y"],
                drop=fp32_psnr - acc["psnr_y"],
                calib_s=secs,
                size_mb=None if path is None else path.stat().st_size / 1e6,
            )
        )
    base = next(r["latency_ms"] for r in rows if r["name"] == "ONNX Runtime fp32")
    for r in rows:
        r["speedup"] = base / r["latency_ms"]
    table = markdown_table(
        rows,
        [
            ("name", "execution", ""),
            ("latency_ms", f"latency {args.size}x{args.size} (ms)", ".0f"),
            ("speedup", "vs ORT fp32", ".2f"),
            ("fused", "fused int8 convs", ""),
            ("psnr_y", "Y-PSNR", ".3f"),
            ("ssim_y", "SSIM", ".4f"),
            ("drop", "drop vs fp32 (dB)", ".3f"),
            ("size_mb", "file (MB)", ".2f"),
            ("calib_s", "calib/build (s)", ".1f"),
        ],
    )
    header = (
        f"{recipe.name} on {model.name} x{model.scale}, {recipe.validate_.dataset} set ({len(pairs)} images), "
        f"{args.threads} threads; {machine()}"
    )
    print(header)
    print(table)
    save_json(args.out / "bench_ort.json", dict(header=header, rows=rows))


if __name__ == "__main__":
    main()
