#!/usr/bin/env python
"""N:M re-fit benchmark (issue 12 item 5): plain masks / re-fit / guarded re-fit / guarded re-fit + augmentation.

    python tools/bench_nm_refit.py                     # recipes/sparse24_int8_edsr_x4.yaml, every eval image
    python tools/bench_nm_refit.py --max-images 8 --views 2 --json /tmp/nm_refit.json

One `prepare` of the recipe (model, calibration patches), then per variant the build's sparsity step
(its wall seconds are the "sparsity s" column: masks, sensitivities, re-fit), and the build's equalize /
calibrate / precision / refine steps on that plan for W8A8. Y-PSNR drop vs the dense fp32 model on the eval
images (never used for calibration): the masked fp32 network, and the W8A8 simulation of the `ort` profile
(the ground truth its graph reproduces). Writes docs/results/nm_refit.json (title, command, machine, tables).
"""

from __future__ import annotations

import argparse
import json
import shlex
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

from bench_common import save_json  # noqa: E402

from srdeploy.data.sets import load_pairs  # noqa: E402
from srdeploy.machine import machine_info  # noqa: E402
from srdeploy.quant.apply import with_masks  # noqa: E402
from srdeploy.quant.simulate import simulate  # noqa: E402
from srdeploy.recipe import load_recipe  # noqa: E402
from srdeploy.stages.calibrate import calibrate_step  # noqa: E402
from srdeploy.stages.context import initial_plan, prepare  # noqa: E402
from srdeploy.stages.equalize import equalize_step  # noqa: E402
from srdeploy.stages.precision import precision_step  # noqa: E402
from srdeploy.stages.refine import refine_step  # noqa: E402
from srdeploy.stages.sparsity import sparsity_step  # noqa: E402
from srdeploy.validate.metrics import psnr_y  # noqa: E402

RECIPE = ROOT / "recipes" / "sparse24_int8_edsr_x4.yaml"
OUT = ROOT / "docs" / "results" / "nm_refit.json"


def _command() -> str:
    return "python " + " ".join(shlex.quote(a) for a in [f"tools/{Path(sys.argv[0]).name}", *sys.argv[1:]])


def variants(views: int) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("plain masks", dict(refit=False, bias_correction=False)),
        ("re-fit", dict(refit=True, refit_guard=False, refit_augment=1)),
        ("guarded re-fit", dict(refit=True, refit_guard=True, refit_augment=1)),
        (f"guarded re-fit + augment x{views}", dict(refit=True, refit_guard=True, refit_augment=views)),
    ]


@torch.no_grad()
def y_psnrs(module: torch.nn.Module, pairs: list, scale: int) -> np.ndarray:
    module.eval()
    out = []
    for p in pairs:
        x = torch.from_numpy(np.ascontiguousarray(p.lr.transpose(2, 0, 1)))[None]
        out.append(psnr_y(module(x)[0].numpy().transpose(1, 2, 0), p.hr, scale))
    return np.array(out)


def drops(ref: np.ndarray, got: np.ndarray, names: list[str]) -> dict[str, Any]:
    d = ref - got
    return dict(mean=float(d.mean()), worst=float(d.max()), worst_image=names[int(d.argmax())])


def run_variant(ctx: Any, update: dict[str, Any], pairs: list, ref: np.ndarray) -> dict[str, Any]:
    recipe = ctx.recipe.model_copy(update=dict(sparsity=ctx.recipe.sparsity.model_copy(update=update)))
    ctx = replace(ctx, recipe=recipe, reports={}, seconds={})
    t0 = time.perf_counter()
    plan = sparsity_step(ctx, initial_plan(ctx))
    seconds = time.perf_counter() - t0
    names = [p.name for p in pairs]
    fp32 = drops(ref, y_psnrs(with_masks(ctx.model.module, plan.masks), pairs, ctx.model.scale), names)
    for step in (equalize_step, calibrate_step, precision_step, refine_step):
        plan = step(ctx, plan)
    w8a8 = drops(ref, y_psnrs(simulate(ctx.model, plan, profile="ort"), pairs, ctx.model.scale), names)
    fits = sorted({m.fit for m in plan.masks.values()})
    summary = ctx.reports["sparsity"].get("refit")
    return dict(sparsity_s=seconds, fp32=fp32, w8a8=w8a8, fits=fits, refit=summary)


def _cells(r: dict[str, Any]) -> list[Any]:
    fp32, w8a8 = r["fp32"], r["w8a8"]
    choices = (r["refit"] or {}).get("choices") or "–"
    return [fp32["mean"], fp32["worst"], w8a8["mean"], w8a8["worst"], w8a8["worst_image"], r["sparsity_s"], choices]


def document(args: argparse.Namespace, rows: list[tuple[str, dict[str, Any]]], pairs: list) -> dict[str, Any]:
    table = [[name, *_cells(r)] for name, r in rows]
    columns = ["variant", "fp32 mean drop dB", "fp32 worst dB", "W8A8 mean drop dB", "W8A8 worst dB"]
    columns += ["W8A8 worst image", "sparsity s", "guard choices (layers)"]
    subset = "every image" if args.max_images is None else f"the first {args.max_images} images (sorted by name)"
    return dict(
        title="N:M re-fit guard: plain masks, re-fit, guarded re-fit (issue 12 item 5)",
        order=35,
        command=[_command()],
        machine=machine_info(("torch",)),
        intro=[
            f"{Path(args.recipe).name} (uniform 2:4 on the body convs; W8A8 percentile): {args.patches} calibration "
            f"patches, Y-PSNR drop vs the dense fp32 model on {subset} of calib_data/eval ({len(pairs)} images, "
            "never used for calibration), masked fp32 PyTorch and the W8A8 `ort` simulation. `sparsity s`: wall "
            "seconds of the build's sparsity step (masks, per-layer sensitivities, re-fit) on a machine shared "
            "with other jobs."
        ],
        tables=[dict(caption="Uniform 2:4, EDSR-baseline x4", columns=columns, rows=table)],
        notes=notes({name: r for name, r in rows}),
        raw={name: r for name, r in rows},
    )


def notes(raw: dict[str, dict[str, Any]]) -> list[str]:
    """Ratios and the issue's target, computed from the measured rows."""
    out = []
    base = raw.get("re-fit", {}).get("sparsity_s")
    for name, r in raw.items():
        if base and name.startswith("guarded"):
            out.append(f"Sparsity step, {name} / re-fit: {r['sparsity_s'] / base:.2f}x (one run each, in sequence).")
    ref = raw.get("re-fit")
    for name, r in raw.items():
        if ref and name.startswith("guarded"):
            d = {k: {m: r[k][m] - ref[k][m] for m in ("mean", "worst")} for k in ("fp32", "w8a8")}
            out.append(
                f"{name} minus re-fit (dB of drop; negative: better): fp32 mean {d['fp32']['mean']:+.3f}, worst "
                f"{d['fp32']['worst']:+.3f}; W8A8 mean {d['w8a8']['mean']:+.3f}, worst {d['w8a8']['worst']:+.3f}."
            )
    for name, r in raw.items():
        w = r["w8a8"]
        met = "meets" if w["mean"] <= 0.15 and w["worst"] <= 0.4 else "misses"
        out.append(
            f"{name} + W8A8 {met} issue 12's 2:4 target (mean <= 0.15 dB, worst image <= 0.4 dB): "
            f"{w['mean']:.3f} / {w['worst']:.3f} dB ({w['worst_image']})."
        )
    return out


def refit_timing(ctx: Any, views: int, repeats: int) -> dict[str, Any]:
    """Wall seconds of the re-fit alone (sparsity/refit.refit) per variant, the variants interleaved."""
    from srdeploy.sparsity.common import SENSITIVITY_BATCH
    from srdeploy.sparsity.refit import refit
    from srdeploy.sparsity.refit_guard import Guard
    from srdeploy.sparsity.uniform import uniform_masks

    cfg = ctx.recipe.sparsity
    masks, _ = uniform_masks(ctx.model, ctx.layers, cfg.n, cfg.m, cfg.include_roles)
    order = [x.weight for x in ctx.layers]
    configs = [
        ("re-fit", None, 1),
        ("guarded re-fit", Guard(), 1),
        (f"guarded re-fit + augment x{views}", Guard(), views),
    ]
    times: dict[str, list[float]] = {name: [] for name, _, _ in configs}
    for _ in range(repeats):
        for name, guard, v in configs:
            t0 = time.perf_counter()
            refit(ctx.model, masks, order, ctx.patches, SENSITIVITY_BATCH, guard, v)
            times[name].append(time.perf_counter() - t0)
            print(name, times[name][-1], flush=True)
    base = min(times["re-fit"])
    rows = [[name, min(t), float(np.median(t)), min(t) / base] for name, t in times.items()]
    cols = ["variant", "re-fit s (min)", "re-fit s (median)", "x re-fit"]
    return dict(caption=f"The re-fit alone, {repeats} interleaved rounds", columns=cols, rows=rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default=str(RECIPE))
    ap.add_argument("--max-images", type=int, default=None, help="first N eval images (default: all)")
    ap.add_argument("--patches", type=int, default=None, help="calibration patches (default: the recipe's)")
    ap.add_argument("--views", type=int, default=2, help="dihedral views of the augmented variant")
    ap.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    ap.add_argument("--json", type=Path, default=OUT)
    ap.add_argument("--refit-timing", type=int, metavar="ROUNDS", help="only time the re-fit, add it to --json")
    ap.add_argument("--notes-only", action="store_true", help="recompute the notes of --json from its rows")
    args = ap.parse_args(argv)
    if args.notes_only:
        doc = json.loads(args.json.read_text())
        save_json(args.json, {**doc, "notes": notes(doc["raw"])})
        return 0
    recipe = load_recipe(Path(args.recipe))
    if args.patches:
        recipe = recipe.model_copy(update=dict(calib=recipe.calib.model_copy(update=dict(patches=args.patches))))
    args.patches = recipe.calib.patches
    ctx = prepare(recipe, Path(tempfile.mkdtemp()) / "fp32.onnx")
    if args.refit_timing:
        doc = json.loads(args.json.read_text())
        doc["tables"] = [t for t in doc["tables"] if not t["caption"].startswith("The re-fit alone")]
        doc["tables"].append(refit_timing(ctx, args.views, args.refit_timing))
        doc["command"] = [doc["command"][0], _command()]
        save_json(args.json, doc)
        return 0
    pairs = load_pairs(recipe.validate_.dataset, ctx.model.scale, args.max_images)
    ref = y_psnrs(ctx.model.module, pairs, ctx.model.scale)
    rows = []
    for name, update in variants(args.views):
        if args.only and name not in args.only:
            continue
        rows.append((name, run_variant(ctx, update, pairs, ref)))
        print(name, {k: rows[-1][1][k] for k in ("sparsity_s", "fp32", "w8a8")}, flush=True)
    save_json(args.json, document(args, rows, pairs))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
