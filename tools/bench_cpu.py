#!/usr/bin/env python
"""The CPU table of issue 13: latency and accuracy of every CPU path for built models.

    python tools/bench_cpu.py /tmp/ov_edsr /tmp/ov_srresnet --size 256 --threads 2 --repeats 5 \\
        --out docs/results

Per build folder (made with `srdeploy build`): ORT fp32, OpenVINO fp32 (f32, and the plugin's
default precision bf16 where the CPU has it) of the plain export of the recipe's model (what a user would
export; the peers quantize it too), the build's fp32.onnx (sub-pixel folded), srdeploy's graphs in each
runtime, ORT quantize_static with its defaults, NNCF with its defaults on the OpenVINO model and on the
ONNX model (in both runtimes). Peers calibrate on the build's own LR patches (same recipe, seed and set). Latency is
timed round-robin in one process (srdeploy.bench.interleaved_ms, median); accuracy is Y-PSNR on the
recipe's validation set against the same runtime-independent reference, ORT fp32: mean and
worst-image drop. Writes docs/results/cpu_<model>.json (command, CPU, ISA, versions, date).
Needs tools/requirements-bench.txt (nncf) for the NNCF rows; ``--peers qs`` skips them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import markdown_table, plain_export, save_json

from srdeploy.backends.openvino import OpenVinoRunner
from srdeploy.backends.ort import OrtRunner
from srdeploy.bench import build_graphs, interleaved_ms, machine_info
from srdeploy.data.calib_inputs import calib_patches
from srdeploy.data.sets import load_pairs
from srdeploy.recipe import load_recipe
from srdeploy.stages.context import calib_source
from srdeploy.validate.metrics import psnr_y

Infer = Callable[[np.ndarray], np.ndarray]


def runner(runtime: str, path: Path, threads: int, precision: str = "f32") -> Infer:
    if runtime == "ort":
        return OrtRunner(path, threads=threads).infer
    return OpenVinoRunner(path, threads=threads, precision=precision).activate().infer


BASELINE_NOTE = (
    "Baseline rows (ORT fp32, OpenVINO fp32): the plain export of the recipe's model, BatchNorm etc. folded but "
    "without srdeploy's sub-pixel fold (what a user would export); the peers quantize that graph. The build's own "
    "fp32.onnx is listed separately."
)


def executions(
    build: Path, recipe: Any, tmp: Path, patches: np.ndarray, peers: set[str], extra: list[str]
) -> list[dict]:
    """(label, runtime, path, precision, calibration seconds) of every row, in table order. Baseline and peers'
    input: the plain export of the model (bench_common.plain_export)."""
    from cpu_peers import nncf_onnx_defaults, nncf_openvino_defaults, quantize_static_defaults

    from srdeploy.models.deploy_form import load_for_recipe

    fp32 = plain_export(load_for_recipe(recipe.model), tmp / "fp32_plain.onnx", recipe.export.opset)
    rows = [
        dict(label="ORT fp32", runtime="ort", path=fp32),
        dict(label="OpenVINO fp32 (f32)", runtime="openvino", path=fp32),
        dict(label="OpenVINO fp32 (bf16, plugin default here)", runtime="openvino", path=fp32, precision="bf16"),
        dict(label="ORT : srdeploy fp32.onnx (sub-pixel folded)", runtime="ort", path=build / "fp32.onnx"),
        dict(
            label="OpenVINO : srdeploy fp32.onnx (sub-pixel folded, f32)", runtime="openvino", path=build / "fp32.onnx"
        ),
    ]
    for g in build_graphs(build)[1:]:  # each profile's default-tier graph (srdeploy bench's list; IR if written)
        path = g.path.with_suffix(".onnx")  # an IR is written beside its ONNX (stages/emit.py: write_ir)
        rows += [
            dict(label=f"ORT : srdeploy {g.label} graph", runtime="ort", path=path),
            dict(label=f"OpenVINO : srdeploy {g.label} graph", runtime="openvino", path=path),
        ]
        if g.path.suffix == ".xml":
            rows.append(dict(label=f"OpenVINO : srdeploy {g.label} IR", runtime="openvino", path=g.path))
    for spec in extra:  # label=path: other graphs (earlier layouts, prototypes), run in both runtimes
        label, _, path = spec.partition("=")
        if not path.endswith(".xml"):  # an OpenVINO IR runs in OpenVINO only
            rows.append(dict(label=f"ORT : {label}", runtime="ort", path=Path(path)))
        rows.append(dict(label=f"OpenVINO : {label}", runtime="openvino", path=Path(path)))
    if "qs" in peers:
        path, secs = quantize_static_defaults(fp32, tmp / "qs_defaults.onnx", patches)
        rows += [
            dict(label="ORT : quantize_static (defaults)", runtime="ort", path=path, calib_s=secs),
            dict(label="OpenVINO : quantize_static (defaults)", runtime="openvino", path=path, calib_s=secs),
        ]
    if "nncf" in peers:
        path, secs = nncf_openvino_defaults(fp32, tmp / "nncf_ov" / "model.xml", patches)
        rows.append(
            dict(label="OpenVINO : NNCF INT8 (defaults, OV model)", runtime="openvino", path=path, calib_s=secs)
        )
        path, secs = nncf_onnx_defaults(fp32, tmp / "nncf_onnx.onnx", patches)
        rows += [
            dict(label="ORT : NNCF INT8 (defaults, ONNX model)", runtime="ort", path=path, calib_s=secs),
            dict(label="OpenVINO : NNCF INT8 (defaults, ONNX model)", runtime="openvino", path=path, calib_s=secs),
        ]
    return rows


def y_psnrs(infer: Infer, pairs: list, scale: int) -> list[float]:
    out = []
    for p in pairs:
        x = np.ascontiguousarray(p.lr.transpose(2, 0, 1)[None], dtype=np.float32)
        out.append(psnr_y(infer(x)[0].transpose(1, 2, 0), p.hr, scale))
    return out


def bench_build(build: Path, args: argparse.Namespace) -> dict[str, Any]:
    recipe = load_recipe(build / "recipe.yaml")
    scale = int(json.loads((build / "tiers.json").read_text())["scale"])
    pairs = load_pairs(recipe.validate_.dataset, scale, args.max_images)
    patches = calib_patches(recipe.calib, scale, recipe.calib.patch_size, recipe.calib.patches, recipe.seed)
    with tempfile.TemporaryDirectory() as tmp:
        rows = executions(build, recipe, Path(tmp), patches, set(args.peers.split(",")), args.extra)
        infers = {r["label"]: runner(r["runtime"], r["path"], args.threads, r.get("precision", "f32")) for r in rows}
        psnr = {label: y_psnrs(f, pairs, scale) for label, f in infers.items()}
        x = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
        times = interleaved_ms(infers, x, warmup=1, repeats=args.repeats)
    ref = np.array(psnr["ORT fp32"])
    base = float(np.median(times["ORT fp32"]))
    for r in rows:
        drops = ref - np.array(psnr[r["label"]])
        median = float(np.median(times[r["label"]]))
        r.update(
            path=str(r["path"]).replace(str(build), "BUILD")
            if str(r["path"]).startswith(str(build))
            else ("peer" if r.get("calib_s") is not None else Path(r["path"]).name),
            median_ms=median,
            times_ms=times[r["label"]],
            vs_ort_fp32=base / median,
            psnr_y=float(np.mean(psnr[r["label"]])),
            mean_drop_db=float(drops.mean()),
            worst_drop_db=float(drops.max()),
            worst_image=pairs[int(drops.argmax())].name,
        )
    return dict(
        build=str(build),
        recipe=recipe.name,
        model=recipe.model.name or str(recipe.model.path),
        dataset=recipe.validate_.dataset,
        images=len(pairs),
        calib_patches=f"{len(patches)} x {recipe.calib.patch_size}px from '{calib_source(recipe)}', seed {recipe.seed}",
        rows=rows,
    )


def summary_notes(result: dict[str, Any]) -> list[str]:
    """What the table says about the targets, computed from its rows."""
    rows = result["rows"]
    ours = [r for r in rows if "srdeploy" in r["label"]]
    peers = [r for r in rows if r.get("calib_s") is not None]
    notes = [
        f"Drops: Y-PSNR of each graph alone against ORT fp32 on {result['images']} {result['dataset']} images "
        "(srdeploy rows: the build's base tier; its float tier for the flattest tiles is not routed here, so flat "
        "images weigh more than in `srdeploy validate`). Latency: median of round-robin rounds in one process.",
        BASELINE_NOTE,
    ]
    if ours and peers:
        best, peer = min(ours, key=lambda r: r["median_ms"]), min(peers, key=lambda r: r["median_ms"])
        notes.append(
            f"Fastest srdeploy row: {best['label']}, {best['vs_ort_fp32']:.2f}x ORT fp32, mean drop "
            f"{best['mean_drop_db']:.3f} dB; fastest peer: {peer['label']}, {peer['vs_ort_fp32']:.2f}x, mean drop "
            f"{peer['mean_drop_db']:.3f} dB (ours takes {best['median_ms'] / peer['median_ms']:.2f}x the peer's time)."
        )
    return notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("builds", nargs="+", type=Path, help="build folders (srdeploy build)")
    ap.add_argument("--size", type=int, default=256, help="LR input side for latency")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5, help="round-robin rounds (median)")
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--peers", default="qs,nncf", help="comma list: qs (quantize_static), nncf")
    ap.add_argument("--extra", action="append", default=[], help="label=path: another graph to run in ORT and OpenVINO")
    ap.add_argument("--out", type=Path, default=Path("docs/results"), help="folder for cpu_<model>.json")
    ap.add_argument("--note", action="append", default=[], help="a line for the result's notes (repeatable)")
    args = ap.parse_args()
    for build in args.builds:
        t0 = time.perf_counter()
        result = bench_build(build, args)
        doc = dict(
            title=f"CPU runtimes: ORT vs OpenVINO, {result['model']} ({result['recipe']}) (tools/bench_cpu.py)",
            order=30,
            command="python tools/bench_cpu.py " + " ".join(sys.argv[1:]),
            size=args.size,
            threads=args.threads,
            repeats=args.repeats,
            machine=machine_info(),
            seconds=time.perf_counter() - t0,
            **result,
        )
        doc["notes"] = summary_notes(result) + list(args.note)
        save_json(args.out / f"cpu_{result['model']}.json", doc)
        m = doc["machine"]
        head = f"{result['model']} ({result['recipe']}), {args.size}x{args.size} LR, {args.threads} threads"
        print(f"\n{head}, {result['dataset']} ({result['images']} images); {m['cpu']} [{', '.join(m['isa'])}]")
        print(
            markdown_table(
                result["rows"],
                [
                    ("label", "runtime : model", ""),
                    ("median_ms", "latency (ms)", ".0f"),
                    ("vs_ort_fp32", "vs ORT fp32", ".2f"),
                    ("mean_drop_db", "mean drop (dB)", ".3f"),
                    ("worst_drop_db", "worst-image drop (dB)", ".3f"),
                    ("calib_s", "calib (s)", ".1f"),
                ],
            )
        )


if __name__ == "__main__":
    main()
