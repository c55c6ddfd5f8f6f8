#!/usr/bin/env python
"""Issue 11's zoo table: every architecture srdeploy deploys (built-in and through spandrel), built with one W8A8
recipe and measured the same way.

    python tools/bench_zoo.py --out docs/results            # all architectures (tools/zoo_models.py)
    python tools/bench_zoo.py --only "RRDBNet x4" --max-images 4 --repeats 3

Per architecture: parameters; the exported fp32 graph run at odd input sizes (padded by the runtime where the
network has size rules) against PyTorch; INT8 fidelity, i.e. the Y-PSNR of each deployed graph's output against
the fp32 graph's output on the eval images (``ort`` profile in ONNX Runtime, and the ``trt`` profile's graph run
by ONNX Runtime's CPU kernels, not TensorRT); ONNX Runtime latency of fp32 vs the ``ort`` INT8 graph at 128x128 LR,
2 threads, timed round-robin in one process (median). Recipe: W8A8, MSE ranges, body + upsampler + tail
quantized, 64 calibration patches of 48 px from the train set, no float tier (every tile runs INT8); profiles ort,
ort_avx2 (7-bit weights: what the runtime runs on x86 CPUs without VNNI) and trt.
Writes docs/results/zoo.json (command, CPU model, ISA, versions, date).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import markdown_table, save_json
from zoo_models import DAMPING_NOTE, RANDOM_RRDB_NOTE, SIGNAL_NOTE, ZooSpec, parameters, specs

from srdeploy.backends.ort import OrtRunner
from srdeploy.bench import interleaved_ms, machine_info
from srdeploy.data.sets import load_pairs
from srdeploy.machine import has_vnni
from srdeploy.models.deploy_form import load_deploy_model
from srdeploy.runtime.padding import run_padded
from srdeploy.validate.metrics import psnr_y

PROFILES = ("ort", "ort_avx2", "trt")  # the runtime picks ort_avx2 on x86 CPUs without VNNI
ODD_SIZES = ((1, 17, 23), (2, 30, 41))  # (batch, H, W) LR, checked against PyTorch
TARGET_FIDELITY_DB = 40.0  # conv-only architectures, deployed INT8 vs fp32 output
TARGET_RRDB_SPEEDUP = 2.0


def recipe_dict(spec: ZooSpec, folder: Path, patches: int) -> dict[str, Any]:
    return {
        "name": spec.key.lower().replace(" ", "_").replace("(", "").replace(")", ""),
        "model": spec.make(folder),
        "calib": {"set": "train", "patches": patches, "patch_size": 48},
        "quant": {"weight_bits": 8, "act_bits": 8, "method": "mse", "quantize_roles": ["body", "upsampler", "tail"]},
        "export": {"profiles": ["ort", "ort_avx2", "trt"]},
        "tensorrt": {"enabled": False},
        "validate": {"reference": "fp32"},
    }


def export_check(out: Path, model: Any) -> tuple[str, float]:
    """Sizes the fp32 graph was run at (through the runtime's padding) and its largest difference from PyTorch."""
    fp32 = OrtRunner(out / "fp32.onnx", threads=2).infer
    worst, sizes = 0.0, []
    for n, h, w in ODD_SIZES:
        n = model.size_rules.batch or n
        x = np.random.default_rng(h * w).random((n, 3, h, w), dtype=np.float32)
        with torch.no_grad():
            ref = run_padded(lambda b: model.module(torch.from_numpy(b)).numpy(), x, model.size_rules, model.scale)
        got = run_padded(fp32, x, model.size_rules, model.scale)
        worst = max(worst, float(np.abs(got - ref).max()))
        sizes.append(f"{n}x{h}x{w}")
    return " ".join(sizes), worst


def fidelity(out: Path, model: Any, pairs: list, threads: int) -> dict[str, Any]:
    """Y-PSNR of each deployed graph's output against the fp32 graph's, per eval image; fp32 against HR."""
    runs = {"fp32": out / "fp32.onnx", **{k: out / k / "model.onnx" for k in PROFILES}}
    infer = {k: OrtRunner(p, threads=threads).infer for k, p in runs.items() if p.is_file()}
    psnr: dict[str, list[float]] = {k: [] for k in infer if k != "fp32"}
    mse: dict[str, list[float]] = {k: [] for k in psnr}
    vs_hr, spread = [], []
    for p in pairs:
        x = np.ascontiguousarray(p.lr.transpose(2, 0, 1)[None], dtype=np.float32)
        outs = {
            k: np.clip(run_padded(f, x, model.size_rules, model.scale)[0].transpose(1, 2, 0), 0, 1)
            for k, f in infer.items()
        }
        vs_hr.append(psnr_y(outs["fp32"], p.hr, model.scale))
        spread.append(float(outs["fp32"].std()))
        for k in psnr:
            value = psnr_y(outs[k], outs["fp32"], model.scale)
            psnr[k].append(value)
            mse[k].append(255.0**2 / 10 ** (value / 10) if np.isfinite(value) else 0.0)
    row: dict[str, Any] = {"fp32_vs_hr_db": float(np.mean(vs_hr)), "fp32_output_std": float(np.mean(spread))}
    for k in psnr:
        pooled = float(np.mean(mse[k]))  # PSNR of the mean squared error over images (identical images count 0)
        row[f"{k}_db"] = float("inf") if pooled == 0 else 10 * float(np.log10(255.0**2 / pooled))
        worst = int(np.argmin(psnr[k]))
        row[f"{k}_worst_db"], row[f"{k}_worst_image"] = float(psnr[k][worst]), pairs[worst].name
    return row


def latency(out: Path, size: int, threads: int, repeats: int) -> dict[str, Any]:
    graphs = {"fp32": out / "fp32.onnx", "ort": out / "ort" / "model.onnx", "ort_avx2": out / "ort_avx2" / "model.onnx"}
    runners = {k: OrtRunner(p, threads=threads).infer for k, p in graphs.items()}
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    times = interleaved_ms(runners, x, warmup=1, repeats=repeats)
    med = {k: float(np.median(v)) for k, v in times.items()}
    return dict(
        fp32_ms=med["fp32"],
        ort_ms=med["ort"],
        ort_avx2_ms=med["ort_avx2"],
        ort_speedup=med["fp32"] / med["ort"],
        ort_avx2_speedup=med["fp32"] / med["ort_avx2"],
        times_ms=times,
    )


def bench_one(spec: ZooSpec, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    from srdeploy.pipeline import build
    from srdeploy.recipe import recipe_from_dict

    folder = root / spec.key.replace(" ", "_")
    folder.mkdir(parents=True)
    recipe = recipe_from_dict(recipe_dict(spec, folder, args.patches), origin=f"bench_zoo:{spec.key}")
    t0 = time.perf_counter()
    out = build(recipe, folder / "build", run_validation=False).out_dir
    build_s = time.perf_counter() - t0
    model = load_deploy_model(out)
    sizes, export_err = export_check(out, model)
    pairs = load_pairs(args.dataset, model.scale, args.max_images)
    row = dict(
        architecture=spec.key,
        family=spec.family,
        weights=spec.weights,
        arch=model.arch,
        scale=model.scale,
        params_m=parameters(model.module),
        size_rules="any" if model.size_rules.trivial else model.size_rules.to_json(),
        sizes_checked=sizes,
        export_max_abs_err=export_err,
        build_s=build_s,
        images=len(pairs),
        **fidelity(out, model, pairs, args.threads),
        **latency(out, args.size, args.threads, args.repeats),
    )
    # what srdeploy's runtime runs on this CPU (runtime/sessions.py: ort_avx2 where there is no VNNI)
    row["deployed"] = "ort_avx2" if has_vnni() is False else "ort"
    row["deployed_db"], row["speedup"] = row[f"{row['deployed']}_db"], row[f"{row['deployed']}_speedup"]
    row["meets_fidelity"] = row["deployed_db"] >= TARGET_FIDELITY_DB if spec.conv_only else None
    return row


COLUMNS = [
    ("architecture", "architecture", ""),
    ("weights", "weights", ""),
    ("params_m", "params (M)", ".2f"),
    ("sizes_checked", "odd sizes run", ""),
    ("export_max_abs_err", "fp32 graph vs PyTorch (max abs)", ".1e"),
    ("fp32_vs_hr_db", "fp32 vs HR (dB)", ".2f"),
    ("fp32_output_std", "fp32 output std", ".3f"),
    ("ort_db", "ort vs fp32 (dB)", ".2f"),
    ("ort_avx2_db", "ort_avx2 vs fp32 (dB)", ".2f"),
    ("ort_avx2_worst_db", "ort_avx2 worst image (dB)", ".2f"),
    ("trt_db", "trt graph in ORT vs fp32 (dB)", ".2f"),
    ("fp32_ms", "ORT fp32 (ms)", ".0f"),
    ("ort_ms", "ORT ort (ms)", ".0f"),
    ("ort_avx2_ms", "ORT ort_avx2 (ms)", ".0f"),
    ("speedup", "deployed speed-up", ".2f"),
    ("build_s", "build (s)", ".0f"),
]


def notes(rows: list[dict[str, Any]], vnni: bool | None) -> list[str]:
    """``vnni``: whether the measuring CPU had VNNI (the result's ``machine``, not the CPU rendering it)."""
    conv = [r for r in rows if r["meets_fidelity"] is not None]
    missed = [r["architecture"] for r in conv if not r["meets_fidelity"]]
    out = [
        f"Target: deployed INT8 (the graph srdeploy's runtime picks on this CPU: ort_avx2 without VNNI, else ort) "
        f">= {TARGET_FIDELITY_DB:.0f} dB against its fp32 output for every conv-only "
        f"architecture: {'met by all ' + str(len(conv)) if not missed else 'not met by ' + ', '.join(missed)}.",
    ]
    rrdb = next((r for r in rows if r["architecture"] == "RRDBNet x4"), None)
    if rrdb:
        met = "met" if rrdb["speedup"] >= TARGET_RRDB_SPEEDUP else "**not met**"
        out.append(
            f"Target: RRDBNet x4 INT8 >= {TARGET_RRDB_SPEEDUP:.0f}x faster than ORT fp32: {met} "
            f"({rrdb['speedup']:.2f}x)."
        )
    if vnni is False:
        gaps = [r["ort_avx2_db"] - r["ort_db"] for r in rows]
        out.append(
            f"This CPU has no VNNI: ort_avx2 (7-bit weights) is up to {max(gaps):.1f} dB (median "
            f"{float(np.median(gaps)):.1f} dB) closer to fp32 than the ort graph (they differ only where ort has "
            "8-bit weights, whose u8 x s8 pair sums saturate 16 bits here); the runtime runs ort_avx2 on such CPUs."
        )
    out += [
        "Random-initialised rows: no released checkpoint can be downloaded here; their fidelity is a proxy "
        "(trained weights have other ranges), their export, graph and speed are the real networks'. "
        "The fp32-vs-HR column shows which rows are trained.",
        DAMPING_NOTE + ".",
        RANDOM_RRDB_NOTE + ".",
        SIGNAL_NOTE + ".",
        "The trt column runs the TensorRT profile's Q/DQ graph with ONNX Runtime's CPU kernels; TensorRT itself "
        "is not installed on these machines (unverified there).",
    ]
    return out


def rendered(doc: dict[str, Any]) -> dict[str, Any]:
    """The tables and notes of a result document, from its rows (cells formatted as the console table)."""
    st = doc["settings"]
    cells = [[format(r[k], f) if f and isinstance(r.get(k), float) else r.get(k) for k, _, f in COLUMNS]
             for r in doc["rows"]]  # fmt: skip
    subset = f" (first {st['max_images']} images)" if st.get("max_images") else ""
    caption = f"{st['dataset']} set{subset}, latency at {st['size']}x{st['size']} LR, {st['threads']} threads"
    table = dict(caption=caption, columns=[h for _, h, _ in COLUMNS], rows=cells)
    return dict(tables=[table], notes=notes(doc["rows"], doc["machine"].get("vnni")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", default=[], help="architecture label (repeatable)")
    ap.add_argument("--dataset", default="eval")
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--patches", type=int, default=64, help="calibration patches")
    ap.add_argument("--size", type=int, default=128, help="LR side for latency")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="folder for zoo.json (default: print only)")
    ap.add_argument("--name", default="zoo", help="result file <name>.json, e.g. zoo_vnni for a run on another CPU")
    ap.add_argument("--rerender", type=Path, default=None, help="zoo.json: rewrite its tables and notes, no runs")
    args = ap.parse_args()
    if args.rerender:
        doc = json.loads(args.rerender.read_text())
        doc.update(rendered(doc))
        save_json(args.rerender, doc)
        return
    chosen = [s for s in specs() if not args.only or s.key in args.only]
    if not chosen:
        sys.exit(f"error: no architecture named {args.only}; known: {', '.join(s.key for s in specs())}")
    t0, rows = time.perf_counter(), []
    with tempfile.TemporaryDirectory(prefix="bench_zoo-") as tmp:
        for spec in chosen:
            rows.append(bench_one(spec, Path(tmp), args))
            print(markdown_table(rows[-1:], COLUMNS), flush=True)
    m = machine_info()
    settings = dict(
        dataset=args.dataset,
        max_images=args.max_images,
        patches=args.patches,
        size=args.size,
        threads=args.threads,
        repeats=args.repeats,
    )
    doc = dict(
        title="Architecture zoo: W8A8 fidelity and ORT speed per architecture (tools/bench_zoo.py)"
        + ("" if args.name == "zoo" else f", {args.name}"),
        order=15,
        command="python tools/bench_zoo.py " + " ".join(sys.argv[1:]),
        machine=m,
        seconds=time.perf_counter() - t0,
        settings=settings,
        rows=rows,
    )
    doc.update(rendered(doc))
    print(f"\n{m['cpu']} [{', '.join(m['isa'])}]\n" + markdown_table(rows, COLUMNS))
    print("\n".join(doc["notes"]))
    if args.out:
        save_json(args.out / f"{args.name}.json", doc)


if __name__ == "__main__":
    main()
