#!/usr/bin/env python
"""7-bit vs 8-bit weights (int8, or uint8 for the u8 x u8 kernels) in the ONNX Runtime graph, on the CPU this
runs on (issue 12, item 4).

    python tools/bench_weight_bits.py --out docs/results

The ``ort`` profile puts weights on a 7-bit grid (|q| <= 63) so that ONNX Runtime's u8 x s8 kernels cannot
saturate their 16-bit pair sums on AVX2-only CPUs. This measures what that costs where it is not needed (a
VNNI CPU) or what it saves (an AVX2-only CPU), against the other saturation-safe layout, 8-bit weights stored
as uint8 (the shipped ``ort_u8u8`` profile: ONNX Runtime's u8 x u8 kernels): the default recipe
(recipes/int8_edsr_x4.yaml) is built once with the ``ort`` profile, ``ort8`` (the same layout with 8-bit int8
weights, registered here only, not a shipped profile) and ``ort_u8u8``, validated on the recipe's eval set
(mean and worst-image Y-PSNR drop vs fp32 with the build's tier routing, simulation agreement), and the
graphs are timed round-robin in ONNX Runtime and OpenVINO at one LR size. Writes weight_bits_<vnni|avx2>.json
(machine, command, tables).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from bench_common import save_json  # noqa: E402

import srdeploy.profiles as profiles  # noqa: E402
from srdeploy.bench import interleaved_ms  # noqa: E402
from srdeploy.machine import machine_info  # noqa: E402
from srdeploy.pipeline import build  # noqa: E402
from srdeploy.recipe import load_recipe  # noqa: E402

VARIANT = "ort8"
U8U8 = "ort_u8u8"
LABELS = {"ort": "7-bit int8 (ort profile)", VARIANT: "8-bit int8 (ort8 variant)", U8U8: "8-bit uint8 (ort_u8u8)"}
GRAPHS = {"ort": "7-bit", VARIANT: "8-bit", U8U8: "8-bit u8"}


def register_variant() -> None:
    profiles.PROFILES[VARIANT] = replace(profiles.PROFILES["ort"], name=VARIANT, max_weight_bits=8)


def accuracy_rows(report: dict[str, Any]) -> list[list[Any]]:
    fp32 = {r["image"]: r["psnr_y"] for r in report["images"] if r["execution"] == "fp32"}
    rows = []
    for profile, label in LABELS.items():
        execution = f"onnxruntime:{profile}"
        s = next(r for r in report["summary"] if r["execution"] == execution)
        drops = {r["image"]: fp32[r["image"]] - r["psnr_y"] for r in report["images"] if r["execution"] == execution}
        worst = max(drops, key=drops.get)
        rows.append([label, s["psnr_drop_db"], round(drops[worst], 3), worst, s["agreement_min_db"]])
    return rows


def speed_rows(folder: Path, size: int, threads: int, repeats: int) -> list[list[Any]]:
    from srdeploy.backends.openvino import OpenVinoRunner
    from srdeploy.backends.ort import OrtRunner

    graphs = {"fp32": folder / "fp32.onnx", **{name: folder / p / "model.onnx" for p, name in GRAPHS.items()}}
    infers = {}
    for name, path in graphs.items():
        infers[f"ORT {name}"] = OrtRunner(path, threads=threads).infer
        infers[f"OpenVINO {name}"] = OpenVinoRunner(path, threads=threads, precision="f32").activate().infer
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    times = {k: float(np.median(v)) for k, v in interleaved_ms(infers, x, warmup=1, repeats=repeats).items()}
    rows = []
    for runtime in ("ORT", "OpenVINO"):
        base = times[f"{runtime} fp32"]
        for name in GRAPHS.values():
            ms = times[f"{runtime} {name}"]
            rows.append([runtime, name, ms, base / ms])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "int8_edsr_x4.yaml")
    ap.add_argument("--size", type=int, default=256, help="LR side for latency")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None, help="folder for weight_bits_<isa>.json (default: print only)")
    args = ap.parse_args()
    register_variant()
    recipe = load_recipe(args.recipe, [f"export.profiles=[{', '.join(LABELS)}]"])
    machine = machine_info()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = build(recipe, Path(tmp) / "build")
        acc = accuracy_rows(result.report)
        speed = speed_rows(result.out_dir, args.size, args.threads, args.repeats)
    isa = "vnni" if machine.get("vnni") else "avx2"
    doc = dict(
        title="ONNX Runtime graph weights: 7-bit vs 8-bit vs uint8 on this CPU "
        f"({'VNNI' if isa == 'vnni' else 'AVX2 only'}) (tools/bench_weight_bits.py)",
        order=31,
        command="python tools/bench_weight_bits.py " + " ".join(sys.argv[1:]),
        machine=machine,
        seconds=time.perf_counter() - t0,
        tables=[
            dict(
                caption=f"{recipe.name}, {result.report['images_evaluated']} {recipe.validate_.dataset} images, "
                "ONNX Runtime CPU (validation of the build, float tier routed as deployed)",
                columns=["weights", "mean drop (dB)", "worst-image drop (dB)", "worst image", "agreement min (dB)"],
                rows=acc,
            ),
            dict(
                caption=f"latency at {args.size}x{args.size} LR, {args.threads} threads, median of {args.repeats} "
                "round-robin rounds",
                columns=["runtime", "weights", "median ms", "vs the runtime's fp32"],
                rows=speed,
            ),
        ],
        notes=[
            "ort8 = the ort profile with max_weight_bits=8, registered by this script only. Same plan, same "
            "activation grids; only the weight grid differs. ort_u8u8 holds the same 8-bit grid as ort8, as "
            "q + 128 with zero point 128 (ONNX Runtime then fuses QLinearConv with uint8 weights).",
            "Load average at the end (1, 5, 15 min; 2 cores): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()),
        ],
    )
    if args.out:
        save_json(args.out / f"weight_bits_{isa}.json", doc)
    for t in doc["tables"]:
        print(t["caption"])
        for r in t["rows"]:
            print("  ", r)


if __name__ == "__main__":
    main()
