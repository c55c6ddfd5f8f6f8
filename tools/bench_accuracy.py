#!/usr/bin/env python
"""Accuracy benchmark of the calibration methods (same run, same images, same patches):
fp32; W8A8 minmax / percentile / mse; onnxruntime quantize_static W8A8 (MinMax, Entropy,
Percentile); W4A4 minmax; W4A4 DAQ (static; dynamic in simulation); W4A4 AdaBM without and with
refinement; W8A6 AdaBM. Every srdeploy row is a full build validated on the eval set; the Y-PSNR
shown is the deployed `ort` graph (ONNX Runtime, tiers routed per image) and `sim[trt]` is the
TensorRT profile's simulation.

    python tools/bench_accuracy.py --models edsr_baseline_x4,srresnet_bn_x4 --out runs/bench_accuracy
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import evaluate, machine, markdown_table, ort_infer, save_json, torch_infer
from bench_ort import quantize_static_peer

from srdeploy.data.sets import load_pairs, lr_patches
from srdeploy.models.deploy_form import load_deploy_model
from srdeploy.pipeline import build
from srdeploy.quant.daq_dynamic import simulate_daq_dynamic
from srdeploy.quant.plan import load_plan
from srdeploy.recipe import recipe_from_dict
from srdeploy.validate import cost

W8 = dict(weight_bits=8, act_bits=8)
W4 = dict(weight_bits=4, act_bits=4)
ADAPTIVE = dict(adaptive={"enabled": True})
CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("W8A8 minmax", dict(**W8, method="minmax")),
    ("W8A8 percentile", dict(**W8, method="percentile")),
    ("W8A8 mse", dict(**W8, method="mse")),
    ("W4A4 minmax", dict(**W4, method="minmax", weight_method="minmax")),
    ("W4A4 DAQ (static)", dict(**W4, method="daq")),
    ("W4A4 AdaBM", dict(**W4, method="adabm", **ADAPTIVE)),
    ("W4A4 AdaBM + refine", dict(**W4, method="adabm", **ADAPTIVE, refine={"steps": 300})),
    ("W8A6 AdaBM + refine", dict(weight_bits=8, act_bits=6, method="adabm", **ADAPTIVE, refine={"steps": 300})),
]


def recipe_for(model: str, name: str, quant: dict[str, Any], args: argparse.Namespace) -> Any:
    return recipe_from_dict(
        {
            "name": name.replace(" ", "_").replace("(", "").replace(")", "").replace("+", "plus"),
            "model": {"name": model},
            "calib": {"set": "train", "patches": args.patches, "patch_size": args.patch},
            "quant": {**quant, "quantize_roles": ["body"]},
            "export": {"profiles": ["trt", "ort"]},
            "validate": {
                "dataset": args.dataset,
                "max_images": args.max_images,
                "threads": args.threads,
                "thresholds": {"min_agreement_db": None},
            },
        }
    )


def row_from_report(name: str, report: dict[str, Any], fp32: float) -> dict[str, Any]:
    by = {s["execution"]: s for s in report["summary"]}
    q = report["quantization"]
    return dict(
        name=name,
        psnr_y=by["ort"]["psnr_y"],
        ssim_y=by["ort"]["ssim_y"],
        drop=fp32 - by["ort"]["psnr_y"],
        sim_trt=by["sim[trt]"]["psnr_y"],
        trt_drop=fp32 - by["sim[trt]"]["psnr_y"],
        fab=q["fab"],
        bitops_g=q["bitops_g"],
        size_kb=q["model_size_kb"],
        calib_s=q["calibration_seconds"],
        tiers=by["ort"]["tier_usage"],
    )


def bench_model(model: str, args: argparse.Namespace) -> tuple[str, list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    out = args.out / model
    first = None
    for name, quant in CONFIGS:
        recipe = recipe_for(model, name, quant, args)
        t0 = time.perf_counter()
        result = build(recipe, out / recipe.name)
        print(f"[{model}] {name}: {time.perf_counter() - t0:.0f} s", flush=True)
        fp32 = next(s for s in result.report["summary"] if s["execution"] == "fp32")
        if first is None:
            first = result
            rows.append(
                dict(
                    name="fp32",
                    psnr_y=fp32["psnr_y"],
                    ssim_y=fp32["ssim_y"],
                    drop=0.0,
                    sim_trt=fp32["psnr_y"],
                    trt_drop=0.0,
                    fab=32.0,
                    bitops_g=result.report["quantization"]["fp32_bitops_g"],
                    size_kb=result.report["quantization"]["fp32_size_kb"],
                )
            )
        rows.append(row_from_report(name, result.report, fp32["psnr_y"]))
        if "DAQ" in name:
            folder = result.out_dir
            m = load_deploy_model(folder)
            plan = load_plan(folder / "plan.json")
            pairs = load_pairs(args.dataset, m.scale, args.max_images)
            acc = evaluate(torch_infer(simulate_daq_dynamic(m, plan, 4)), pairs, m.scale)
            rows.append(
                dict(
                    name="W4A4 DAQ (dynamic, simulation only)",
                    psnr_y=acc["psnr_y"],
                    ssim_y=acc["ssim_y"],
                    drop=fp32["psnr_y"] - acc["psnr_y"],
                    fab=cost.fab(plan),
                    bitops_g=None,
                    size_kb=None,
                )
            )
    # onnxruntime's own static quantizer on the same fp32 graph and calibration patches
    assert first is not None
    m = load_deploy_model(first.out_dir)
    pairs = load_pairs(args.dataset, m.scale, args.max_images)
    patches = lr_patches("train", m.scale, args.patch, args.patches, 0)
    fp32_psnr = rows[0]["psnr_y"]
    for method in ("MinMax", "Entropy", "Percentile"):
        path, secs = quantize_static_peer(first.out_dir / "fp32.onnx", out / f"qs_{method}.onnx", patches, method)
        acc = evaluate(ort_infer(path, args.threads), pairs, m.scale)
        rows.append(
            dict(
                name=f"ORT quantize_static W8A8 {method}",
                psnr_y=acc["psnr_y"],
                ssim_y=acc["ssim_y"],
                drop=fp32_psnr - acc["psnr_y"],
                fab=8.0,
                bitops_g=rows[0]["bitops_g"] / 16,
                size_kb=path.stat().st_size / 1024,
                calib_s=secs,
            )
        )
    return model, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="edsr_baseline_x4,srresnet_bn_x4")
    ap.add_argument("--out", type=Path, default=Path("runs/bench_accuracy"))
    ap.add_argument("--dataset", default="eval")
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--patches", type=int, default=96)
    ap.add_argument("--patch", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    cols = [
        ("name", "method", ""),
        ("psnr_y", "Y-PSNR (ort)", ".3f"),
        ("ssim_y", "SSIM", ".4f"),
        ("drop", "drop vs fp32", ".3f"),
        ("trt_drop", "drop, trt sim", ".3f"),
        ("fab", "FAB", ".2f"),
        ("bitops_g", "BitOPs (G, 720p)", ".1f"),
        ("size_kb", "weights (KB)", ".0f"),
        ("calib_s", "calibration (s)", ".1f"),
    ]
    results = {}
    for model in args.models.split(","):
        name, rows = bench_model(model, args)
        results[name] = rows
        print(f"\n### {name} ({args.dataset}, {machine()})\n")
        print(markdown_table(rows, cols), flush=True)
    save_json(args.out / f"bench_accuracy_{'+'.join(results)}.json", results)


if __name__ == "__main__":
    main()
