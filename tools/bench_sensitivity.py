"""Per-layer sensitivity of a build (calib/sensitivity.py), like ONNX Runtime's qdq_loss_debug: for every
quantized conv and residual add, the output PSNR against float when only it is quantized, and the gain of the
full quantization when only it stays float; then which convs `quant.float_budget` would keep float.

Measured on LR crops of named images of an image set (e.g. the worst images of a validation report) or on
the build's calibration-style patches of the train set. Output: a JSON in docs/results (the benchmark
convention; tools/render_benchmarks.py turns it into docs/BENCHMARKS.md).

    python tools/bench_sensitivity.py builds/int8_edsr_x4 --profile ort --images kde_darkest_hour \\
        --crop 32 --out docs/results/int8_default_sensitivity.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from srdeploy.buildfolder import BuildFolder
from srdeploy.calib.sensitivity import keep_float, layer_sensitivity, sensitivity_table
from srdeploy.data.sets import load_pairs, lr_patches
from srdeploy.machine import machine_info
from srdeploy.models.deploy_form import load_deploy_model
from srdeploy.quant.plan_io import load_plan

BUDGETS = (0.02, 0.05, 0.1, 0.2)


def image_crops(dataset: str, names: list[str], scale: int, crop: int) -> list[torch.Tensor]:
    """A centred ``crop``-pixel LR crop of each named image (name or prefix), one tensor each."""
    pairs = load_pairs(dataset, scale)
    out = []
    for name in names:
        found = [p for p in pairs if p.name == name] or [p for p in pairs if p.name.startswith(name)]
        if not found:
            sys.exit(f"error: no image named {name!r} in {dataset!r} (names: {', '.join(p.name for p in pairs)})")
        lr = np.ascontiguousarray(found[0].lr.transpose(2, 0, 1)[None], dtype=np.float32)
        h, w = lr.shape[2:]
        c = min(crop, h, w)
        top, left = (h - c) // 2, (w - c) // 2
        out.append(torch.from_numpy(np.ascontiguousarray(lr[:, :, top : top + c, left : left + c])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", type=Path, help="build folder (srdeploy build)")
    ap.add_argument("--profile", default="ort", help="profile whose site plan is simulated (ort, trt, ...)")
    ap.add_argument("--images", nargs="*", default=[], help="image names (or prefixes) of --dataset to crop")
    ap.add_argument("--dataset", default="eval")
    ap.add_argument("--crop", type=int, default=32, help="LR crop side per image")
    ap.add_argument("--patches", type=int, default=16, help="without --images: train patches of 48 px")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("docs/results/sensitivity.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    folder = BuildFolder(args.build)
    plan, model = load_plan(folder.plan), load_deploy_model(folder.root)
    if args.images:
        images = image_crops(args.dataset, args.images, model.scale, args.crop)
        measured_on = f"{args.crop}x{args.crop} LR centre crops of {', '.join(args.images)} ({args.dataset})"
    else:
        p = lr_patches("train", model.scale, 48, args.patches, seed=7)
        images = [torch.from_numpy(np.ascontiguousarray(p[i : i + 8])) for i in range(0, len(p), 8)]
        measured_on = f"{args.patches} LR patches of 48 px from 'train' (seed 7)"
    t0 = time.perf_counter()
    full_db, table = layer_sensitivity(model.module, plan, images, profile=args.profile)
    seconds = time.perf_counter() - t0
    tab = sensitivity_table(full_db, table)
    budgets = [[f"{100 * b:g} %", ", ".join(keep_float(table, b)) or "(none)"] for b in BUDGETS]
    result = dict(
        title=f"Per-layer sensitivity of {args.build.name} ({args.profile} site plan; tools/bench_sensitivity.py)",
        command="python " + " ".join(shlex.quote(a) for a in sys.argv),
        machine=machine_info(),
        measured_on=measured_on,
        seconds=round(seconds, 1),
        full_quantization_psnr_db=tab["full_quantization_psnr_db"],
        tables=[
            dict(caption="Most sensitive first (the top 15)", columns=tab["columns"], rows=tab["rows"][:15]),
            dict(caption="Convs quant.float_budget keeps float", columns=["MAC budget", "kept float"], rows=budgets),
        ],
        notes=[
            f"Measured on {measured_on}; output PSNR of the full quantization against float: "
            f"{tab['full_quantization_psnr_db']} dB; {seconds:.0f} s.",
            "Gains are of the output PSNR against float, not of the drop against HR.",
        ],
        rows=tab["rows"],
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(args.out)
    print(json.dumps(dict(out=str(args.out), seconds=result["seconds"], top=tab["rows"][:5]), indent=1))


if __name__ == "__main__":
    main()
