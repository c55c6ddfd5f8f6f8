#!/usr/bin/env python
"""Filter-pruning benchmark on SRResNet-BN x4: BN-statistics importance vs the L1-norm baseline.

    python tools/bench_sparsity.py                       # ratios 10..50 %, recovery at every ratio
    python tools/bench_sparsity.py --max-images 6 --recovery-ratios 0.3 --int8-build builds/bnprune_srresnet_x4

For each ratio of the residual blocks' internal filters removed (sparsity.bn_ratio): MACs and parameters
of the pruned network, Y-PSNR drop vs the dense model (mean and worst image on calib_data/eval, PyTorch
fp32) without and with label-free recovery (sparsity.recovery), and ONNX Runtime / OpenVINO fp32 latency
at one LR image (--size, default 256x256, --threads 2). Latencies are timed round-robin with the dense
model in the same run (srdeploy.bench.interleaved_ms) and reported as ratios to it, since the machine may
be loaded. The pruned + W8A8 graph (recipes/bnprune_srresnet_x4.yaml, ort profile) is timed in the same
ORT round. Writes docs/results/bnprune_srresnet_x4.json (title, command, machine, tables, notes, raw).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from bench_common import plain_export, save_json  # noqa: E402

from srdeploy.bench import interleaved_ms  # noqa: E402
from srdeploy.data.sets import load_pairs, lr_patches  # noqa: E402
from srdeploy.export import export_onnx  # noqa: E402
from srdeploy.machine import machine_info  # noqa: E402
from srdeploy.models import zoo  # noqa: E402
from srdeploy.models.deploy_form import to_deploy_form  # noqa: E402
from srdeploy.models.loading import load_model  # noqa: E402
from srdeploy.quant.apply import apply_plan  # noqa: E402
from srdeploy.quant.plan import ModelRef, QuantPlan  # noqa: E402
from srdeploy.recipe import SparsitySection, load_recipe  # noqa: E402
from srdeploy.sparsity.api import choose_structure  # noqa: E402
from srdeploy.sparsity.filter_recovery import recover  # noqa: E402
from srdeploy.stages.sparsity import size_before_after  # noqa: E402
from srdeploy.validate.metrics import psnr_y  # noqa: E402

MODEL = "srresnet_bn_x4"
PLAIN = "dense_plain"  # latency key of the dense model exported without srdeploy's sub-pixel fold
RECIPE = ROOT / "recipes" / "bnprune_srresnet_x4.yaml"


@torch.no_grad()
def y_psnrs(module: torch.nn.Module, pairs: list, scale: int) -> np.ndarray:
    out = []
    for p in pairs:
        x = torch.from_numpy(np.ascontiguousarray(p.lr.transpose(2, 0, 1)))[None]
        out.append(psnr_y(module(x)[0].numpy().transpose(1, 2, 0), p.hr, scale))
    return np.array(out)


def _plan(structure: tuple) -> QuantPlan:
    return QuantPlan(model=ModelRef("srresnet", MODEL, 4), layers=(), structure=structure)


def accuracy_rows(args: argparse.Namespace, loaded, dense, pairs, patches, tmp: Path) -> tuple[list, dict]:
    """One row per (policy, ratio, recovery); ONNX exports of each pruned shape for the latency rounds."""
    ref = y_psnrs(dense.module, pairs, dense.scale)
    rows, exports = [], {"dense": export_onnx(dense, tmp / "dense.onnx")}
    exports[PLAIN] = plain_export(loaded, tmp / "dense_plain.onnx")
    for ratio in args.ratios:
        for policy in ("bn_filter", "l1_filter"):
            structure, report = choose_structure(loaded, SparsitySection(policy=policy, bn_ratio=ratio))
            pruned = replace(dense, module=apply_plan(dense.module, _plan(structure)))
            size = size_before_after(dense, pruned)
            key = f"{policy}@{ratio}"
            exports[key] = export_onnx(pruned, tmp / f"{key}.onnx")
            variants = [(False, structure)]
            if ratio in args.recovery_ratios:
                t0 = time.perf_counter()
                fitted, _ = recover(dense, structure, patches)
                variants.append((True, fitted))
                print(f"{key}: recovery {time.perf_counter() - t0:.0f} s", flush=True)
            for recovered, groups in variants:
                drop = ref - y_psnrs(apply_plan(dense.module, _plan(groups)), pairs, dense.scale)
                rows.append(
                    dict(
                        policy=policy, ratio=ratio, recovery=recovered, key=key, **size, drop_mean_db=float(drop.mean())
                    )
                )
                rows[-1].update(drop_worst_db=float(drop.max()), ratio_removed=report["ratio_removed"])
                print({k: rows[-1][k] for k in ("key", "recovery", "drop_mean_db", "drop_worst_db")}, flush=True)
    return rows, exports


def latency(exports: dict[str, Path], int8: Path | None, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Median ms per backend and model, each backend's models timed round-robin in one run."""
    from srdeploy.backends.openvino import OpenVinoRunner
    from srdeploy.backends.ort import OrtRunner

    x = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
    ort = {k: OrtRunner(p, threads=args.threads).infer for k, p in exports.items()}
    if int8 is not None:
        ort["w8a8"] = OrtRunner(int8, threads=args.threads).infer
    out = {"onnxruntime": {k: float(np.median(v)) for k, v in interleaved_ms(ort, x, 1, args.repeats).items()}}
    ov = {k: OpenVinoRunner(p, threads=args.threads).activate().infer for k, p in exports.items()}
    out["openvino"] = {k: float(np.median(v)) for k, v in interleaved_ms(ov, x, 1, args.repeats).items()}
    return out


def int8_graph(args: argparse.Namespace, tmp: Path) -> tuple[Path | None, dict[str, Any]]:
    """ort/model.onnx of the bnprune recipe (built here unless --int8-build names a build folder)."""
    import json

    folder = args.int8_build
    if folder is None:
        from srdeploy.pipeline import build

        folder = build(load_recipe(RECIPE), tmp / "w8a8", run_validation=False).out_dir
    if not (folder / "ort" / "model.onnx").is_file():
        print(f"no ort/model.onnx in {folder}: W8A8 row skipped", flush=True)
        return None, dict(folder=str(folder), skipped="no ort/model.onnx there")
    done = folder / "report.json"  # absent when built here (no validation)
    report = json.loads(done.read_text()) if done.is_file() else {}
    summary = {s["execution"]: s.get("psnr_drop_db") for s in report.get("summary", [])}
    return folder / "ort" / "model.onnx", dict(folder=str(folder), validation_drop_db=summary)


def target_notes(lat: dict[str, dict[str, float]]) -> list[str]:
    """Issue 17's speed targets, read off the latency table (ORT fp32 speed-ups over the dense model)."""
    ort = lat.get("onnxruntime", {})
    if "dense" not in ort or "bn_filter@0.3" not in ort:
        return []
    out = []
    for base, what in (("dense", "the dense deploy form (sub-pixel folded too)"), (PLAIN, "the plain dense export")):
        if base not in ort:
            continue
        pruned = ort[base] / ort["bn_filter@0.3"]
        verdict = "met" if pruned >= 1.3 else "not met"
        if base == PLAIN and "dense" in ort:  # the pruned graph is sub-pixel folded too: say how much that is
            verdict += f"; the sub-pixel fold alone: {ort[PLAIN] / ort['dense']:.2f}x"
        out.append(f"Target bn_filter 30 % >= 1.3x faster in ORT fp32, vs {what}: {pruned:.2f}x ({verdict})")
        if "w8a8" in ort:
            both = ort[base] / ort["w8a8"]
            verdict = "met" if both >= 3 else "not met"
            out.append(f"Target 30 % + W8A8 >= 3x faster than dense fp32 in ORT, vs {what}: {both:.2f}x ({verdict})")
    return out


def tables(rows: list[dict], lat: dict, args: argparse.Namespace) -> list[dict[str, Any]]:
    px = args.size * args.size
    acc = [
        [
            r["policy"],
            f"{r['ratio']:.0%}",
            "yes" if r["recovery"] else "no",
            f"{r['macs_per_lr_pixel_after'] * px / 1e9:.1f}",
            f"{r['macs_ratio']:.3f}",
            f"{r['params_after'] / 1e6:.3f}",
            f"{r['drop_mean_db']:.3f}",
            f"{r['drop_worst_db']:.3f}",
        ]
        for r in rows
    ]
    d_ort, d_ov = lat["onnxruntime"]["dense"], lat["openvino"]["dense"]
    speed = [["dense", "-", f"{d_ort:.0f}", "1.00", f"{d_ov:.0f}", "1.00"]]
    if PLAIN in lat["onnxruntime"]:
        o, v = lat["onnxruntime"][PLAIN], lat["openvino"][PLAIN]
        speed.append(["dense, plain export (no sub-pixel fold)", "-", f"{o:.0f}", f"{d_ort / o:.2f}", f"{v:.0f}"])
        speed[-1].append(f"{d_ov / v:.2f}")
    for key in sorted(k for k in lat["onnxruntime"] if k not in ("dense", "w8a8", PLAIN)):
        o, v = lat["onnxruntime"][key], lat["openvino"][key]
        policy, ratio = key.split("@")
        speed.append([policy, f"{float(ratio):.0%}", f"{o:.0f}", f"{d_ort / o:.2f}", f"{v:.0f}", f"{d_ov / v:.2f}"])
    if "w8a8" in lat["onnxruntime"]:
        w = lat["onnxruntime"]["w8a8"]
        speed.append(["bn_filter + W8A8 (ort profile)", "30%", f"{w:.0f}", f"{d_ort / w:.2f}", "-", "-"])
    return [
        dict(
            caption=f"SRResNet-BN x4 filter pruning: size and Y-PSNR drop vs dense (PyTorch fp32, {args.images} "
            f"calib_data/eval images); GMACs at {args.size}x{args.size} LR",
            columns=[
                "policy",
                "filters removed",
                "recovery",
                "GMACs",
                "MACs vs dense",
                "params (M)",
                "mean drop (dB)",
                "worst-image drop (dB)",
            ],
            rows=acc,
        ),
        dict(
            caption=f"Latency at {args.size}x{args.size} LR, {args.threads} threads, fp32 unless noted; speed-up = "
            "dense ms / pruned ms measured round-robin in the same run",
            columns=["model", "filters removed", "ORT ms", "ORT speed-up", "OpenVINO ms", "OpenVINO speed-up"],
            rows=speed,
        ),
    ]


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratios", default="0.1,0.2,0.3,0.4,0.5")
    ap.add_argument("--recovery-ratios", default=None, help="ratios also measured with recovery (default: all)")
    ap.add_argument("--max-images", type=int, default=None, help="first N calib_data/eval images (default: all)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--int8-build", type=Path, default=None, help="a built bnprune_srresnet_x4 folder")
    ap.add_argument("--skip-int8", action="store_true", help="no W8A8 row (quick checks of this script)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "bnprune_srresnet_x4.json")
    args = ap.parse_args()
    args.ratios = [float(r) for r in args.ratios.split(",")]
    args.recovery_ratios = (
        args.ratios if args.recovery_ratios is None else [float(r) for r in args.recovery_ratios.split(",")]
    )
    return args


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    recipe = load_recipe(RECIPE)
    loaded = load_model(zoo.weights_path(MODEL), name=MODEL)
    dense = to_deploy_form(copy.deepcopy(loaded))
    pairs = load_pairs("eval", dense.scale, args.max_images)
    args.images = len(pairs)
    patches = lr_patches("train", dense.scale, recipe.calib.patch_size, recipe.calib.patches, recipe.seed)
    with tempfile.TemporaryDirectory() as tmp:
        rows, exports = accuracy_rows(args, loaded, dense, pairs, patches, Path(tmp))
        int8, int8_info = (None, dict(skipped=True)) if args.skip_int8 else int8_graph(args, Path(tmp))
        lat = latency(exports, int8, args)
    notes = [
        f"{args.images} of the calib_data/eval images" + (" (subset, to fit the time)" if args.max_images else ""),
        f"recovery measured at ratios {args.recovery_ratios}; it does not change shapes, so latency is per shape",
        "drops are Y-PSNR of the dense fp32 model minus the pruned fp32 model (PyTorch), border = scale",
        "bn_filter: global ranking by expected post-ReLU value, expected value folded into conv2's bias; "
        "l1_filter: the same share of every block by conv1 filter L1 norm",
        f"W8A8 row: ort/model.onnx of {RECIPE.name} (30 % + recovery + W8A8) vs the dense fp32 model",
        *target_notes(lat),
        "Load average at the end (1, 5, 15 min; 2 cores): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()),
    ]
    doc = dict(
        title="BN filter pruning vs L1 on SRResNet-BN x4",
        command="python tools/bench_sparsity.py " + " ".join(sys.argv[1:]),
        machine=machine_info(),
        tables=tables(rows, lat, args),
        notes=notes,
        rows=rows,
        latency_ms=lat,
        w8a8=int8_info,
        seconds=time.perf_counter() - t0,
    )
    save_json(args.out, doc)
    for t in doc["tables"]:
        print(f"\n{t['caption']}\n| " + " | ".join(t["columns"]) + " |")
        for r in t["rows"]:
            print("| " + " | ".join(map(str, r)) + " |")


if __name__ == "__main__":
    main()
