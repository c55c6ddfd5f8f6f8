#!/usr/bin/env python
"""Sparsity benchmark: Y-PSNR against body MACs for dense, uniform and SLS N:M (and BN filter pruning).

    python tools/bench_sparsity.py edsr_baseline_x4 carn_x4 srresnet_bn_x4 --out bench/sparsity
    python tools/bench_sparsity.py /tmp/zoo_test/edsr_baseline_x2.safetensors --out /tmp/b --max-images 2

Per model: dense, uniform 2:4, uniform 1:4, SLS at 50% and 25% of the dense body MACs (plus
bn_filter for conv-BN networks), each in fp32 and, with --int8, through the INT8 hook below.
SLS candidates default to 3:4, 2:4, 1:4, 1:8 (--sls-candidates): with the recipe's default
candidates (sparsest 1:4) a 25% budget can only be met by uniform 1:4.
Evaluated on a calib_data set (default: eval) with the SR protocol (Y channel, border = scale).
Prints a table and the per-layer patterns; writes results.json, table.md and psnr_vs_macs.png to --out.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from bench_common import median_ms  # noqa: E402
from srdeploy.sparsity.config import SparsityConfig  # noqa: E402

from srdeploy.calib.layers import layer_infos  # noqa: E402
from srdeploy.data.sets import load_pairs, lr_patches  # noqa: E402
from srdeploy.errors import SrdeployError  # noqa: E402
from srdeploy.models import zoo  # noqa: E402
from srdeploy.models.base import SRModel  # noqa: E402
from srdeploy.models.deploy_form import to_deploy_form  # noqa: E402
from srdeploy.models.loading import load_model  # noqa: E402
from srdeploy.quant.plan import LayerInfo, NMMask  # noqa: E402
from srdeploy.sparsity.api import apply_bias_updates, choose_masks, prune_structure  # noqa: E402
from srdeploy.sparsity.common import conv_order, masked_copy  # noqa: E402
from srdeploy.validate.cost import lr_pixels  # noqa: E402
from srdeploy.validate.metrics import psnr_y  # noqa: E402

VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("dense", dict(policy="none")),
    ("uniform 2:4", dict(policy="uniform", n=2, m=4)),
    ("uniform 1:4", dict(policy="uniform", n=1, m=4)),
    ("sls 50%", dict(policy="sls", mac_budget=0.5)),
    ("sls 25%", dict(policy="sls", mac_budget=0.25)),
    # BN-statistics filter pruning at three levels; only run for networks with conv-BN-act-conv blocks
    ("bn_filter t=0.01", dict(policy="bn_filter", bn_threshold=0.01, bn_max_fraction=0.5)),
    ("bn_filter t=0.1", dict(policy="bn_filter", bn_threshold=0.1, bn_max_fraction=0.5)),
    ("bn_filter t=0.3", dict(policy="bn_filter", bn_threshold=0.3, bn_max_fraction=0.75)),
]


def int8_module(model: SRModel, masks: dict[str, NMMask], patches: np.ndarray) -> nn.Module | None:
    """The INT8 simulation of ``model`` with ``masks``: the pipeline's calibrate -> QuantPlan ->
    quant.simulate.simulate(model, plan, "trt"), with the default QuantConfig."""
    import tempfile

    import onnx
    from srdeploy.calib.config import QuantConfig
    from srdeploy.calib.flow import calibrate

    from srdeploy.export import export_onnx, residual_add_paths
    from srdeploy.passes.graph_info import analyze
    from srdeploy.quant.simulate import simulate

    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, Path(tmp) / "fp32.onnx")
        graph = analyze(onnx.load(str(path)), residual_add_paths(model.module))
    plan = calibrate(model, graph, patches, QuantConfig(), masks).plan
    return simulate(model, plan, "trt")


def _weight_fix(report: dict[str, Any]) -> str:
    if report.get("refit"):
        return "refit"
    return "bias corr" if report["bias_correction"].get("applied", False) else "none"


def ort_latency_ms(module: nn.Module, scale: int, args: argparse.Namespace) -> float:
    """Median ONNX Runtime (CPU, fp32) latency of ``module`` on one LR image of --latency-size."""
    import tempfile

    from srdeploy.backends.ort import OrtRunner
    from srdeploy.export import export_onnx

    x = np.random.default_rng(0).random((1, 3, args.latency_size, args.latency_size), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(SRModel(module=module, name="bench", arch="bench", scale=scale), Path(tmp) / "m.onnx")
        runner = OrtRunner(path, threads=args.threads or 2)
        return median_ms(lambda: runner.infer(x), warmup=1, repeats=3)


@torch.no_grad()
def eval_psnr(module: nn.Module, pairs: list, scale: int) -> float:
    module.eval()
    vals = []
    for p in pairs:
        x = torch.from_numpy(np.ascontiguousarray(p.lr.transpose(2, 0, 1)))[None]
        vals.append(psnr_y(module(x)[0].numpy().transpose(1, 2, 0), p.hr, scale))
    return float(np.mean(vals))


def body_macs(layers: tuple[LayerInfo, ...], masks: dict[str, NMMask], scale: int) -> float:
    """Body MACs (G) at a 1280x720 HR output, masked convs at their density."""
    px = lr_pixels(scale)
    total = 0.0
    for x in layers:
        if x.role == "body":
            total += x.macs_per_lr_pixel * px * (float(masks[x.weight].keep.mean()) if x.weight in masks else 1.0)
    return total / 1e9


def conv_params(module: nn.Module, masks: dict[str, NMMask]) -> int:
    n = 0
    for name, p in module.named_parameters():
        n += int(masks[name].keep.sum()) if name in masks else p.numel()
    return n


def load(source: str) -> SRModel:
    if zoo.is_zoo_name(source) and not Path(source).exists():
        zoo.weights_path(source)  # raises ModelError naming the missing file and how to train it
    return load_model(source)


def run_model(source: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    raw = load(source)
    pairs = load_pairs(args.dataset, raw.scale, args.max_images)
    patches = lr_patches(args.calib, raw.scale, args.patch_size, args.patches, args.seed)
    rows: list[dict[str, Any]] = []
    dense_psnr = None
    for label, kw in VARIANTS:
        if args.variants and label != "dense" and not any(label.startswith(v) for v in args.variants.split(",")):
            continue
        t0 = time.perf_counter()
        if kw["policy"] == "sls":
            kw = dict(kw, candidates=args.sls_candidates)
        cfg = SparsityConfig(
            sensitivity_patches=args.sensitivity_patches, bias_correction=args.bias_correction, refit=args.refit, **kw
        )
        pruned, structure = prune_structure(copy.deepcopy(raw), cfg)
        if cfg.policy == "bn_filter" and not structure["report"]["blocks_considered"]:
            continue
        model = to_deploy_form(pruned)
        layers = layer_infos(model, conv_order(model.module))
        masks, report = choose_masks(model, layers, patches, cfg, args.seed)
        apply_bias_updates(model, report)
        fp32 = masked_copy(model.module, masks)
        psnr = eval_psnr(fp32, pairs, model.scale)
        dense_psnr = psnr if dense_psnr is None else dense_psnr
        int8_psnr = None
        if args.int8:
            try:
                q = int8_module(model, masks, patches)
                int8_psnr = None if q is None else eval_psnr(q, pairs, model.scale)
            except Exception as exc:  # report and go on: one failing variant should not lose the table
                print(f"  int8 for {label}: unavailable ({type(exc).__name__}: {exc})", file=sys.stderr)
        ms = ort_latency_ms(fp32, model.scale, args) if args.latency and (cfg.policy in ("none", "bn_filter")) else None
        per_layer = {r["weight"]: r["pattern"] for r in report["layers"] if r["role"] == "body"}
        if cfg.policy == "bn_filter":
            per_layer = {
                b["block"]: f"{b['channels_after']}/{b['channels_before']} ch" for b in structure["report"]["blocks"]
            }
        rows.append(
            dict(
                model=raw.name,
                variant=label,
                psnr_fp32=psnr,
                drop_fp32=dense_psnr - psnr,
                psnr_int8=int8_psnr,
                body_gmacs=body_macs(layers, masks, model.scale),
                params=conv_params(model.module, masks),
                weight_fix=_weight_fix(report),
                ort_ms=ms,
                achieved_fraction=report.get("achieved_fraction", report["macs"]["roles_fraction"]),
                per_layer=per_layer,
                eligibility=report["eligibility"]["summary"],
                seconds=round(time.perf_counter() - t0, 1),
            )
        )
        print(f"  {raw.name:>18} {label:<12} {psnr:7.3f} dB  ({rows[-1]['seconds']} s)", flush=True)
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    head = (
        "| model | variant | Y-PSNR fp32 | drop | Y-PSNR int8 | body GMACs@720p | body MAC frac | params |"
        " weight fix | ORT fp32 ms |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        int8 = "n/a" if r["psnr_int8"] is None else f"{r['psnr_int8']:.3f}"
        ms = "" if r["ort_ms"] is None else f"{r['ort_ms']:.0f}"
        lines.append(
            f"| {r['model']} | {r['variant']} | {r['psnr_fp32']:.3f} | {r['drop_fp32']:+.3f} | {int8} | "
            f"{r['body_gmacs']:.2f} | {r['achieved_fraction']:.3f} | {r['params']:,} | {r['weight_fix']} | {ms} |"
        )
    by_model: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r)
    for model, rs in by_model.items():
        lines += ["", f"Per-layer sparsity, {model} (body convs; bn_filter: channels kept):", ""]
        elig = next((r["eligibility"] for r in rs if r["variant"] == "uniform 2:4"), rs[-1]["eligibility"])
        lines.append(f"Eligibility: {elig}")
        for r in rs:
            if r["variant"] == "dense":
                continue
            cells = ", ".join(f"{k.removesuffix('.weight')}={v}" for k, v in r["per_layer"].items())
            lines.append(f"- {r['variant']}: {cells}")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model in dict.fromkeys(r["model"] for r in rows):
        rs = [r for r in rows if r["model"] == model]
        (line,) = ax.plot([r["body_gmacs"] for r in rs], [r["psnr_fp32"] for r in rs], "o", label=f"{model} fp32")
        q = [r for r in rs if r["psnr_int8"] is not None]
        if q:
            ax.plot(
                [r["body_gmacs"] for r in q],
                [r["psnr_int8"] for r in q],
                "x",
                color=line.get_color(),
                label=f"{model} int8",
            )
        for r in rs:
            ax.annotate(
                r["variant"], (r["body_gmacs"], r["psnr_fp32"]), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
    ax.set_xlabel("body GMACs at 1280x720 output (masked convs at density)")
    ax.set_ylabel("Y-PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _patterns(text: str) -> tuple[tuple[int, int], ...]:
    return tuple((int(a), int(b)) for a, b in (t.split(":") for t in text.split(",")))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="zoo names (edsr_baseline_x4, carn_x4, srresnet_bn_x4) or checkpoints")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--dataset", default="eval")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--calib", default="train", help="image set for calibration / sensitivity patches")
    p.add_argument("--patches", type=int, default=32)
    p.add_argument("--patch-size", type=int, default=48)
    p.add_argument("--sensitivity-patches", type=int, default=16)
    p.add_argument("--sls-candidates", type=_patterns, default=_patterns("3:4,2:4,1:4,1:8"), help="e.g. 2:4,1:4")
    p.add_argument("--no-bias-correction", dest="bias_correction", action="store_false")
    p.add_argument("--no-refit", dest="refit", action="store_false", help="plain masking (+ bias correction)")
    p.add_argument("--int8", action="store_true", help="also evaluate through int8_module (the INT8 hook)")
    p.add_argument("--latency", action="store_true", help="ONNX Runtime fp32 latency of dense and bn_filter rows")
    p.add_argument("--latency-size", type=int, default=256, help="LR side for --latency")
    p.add_argument("--variants", default="", help="only these variants (prefixes, e.g. bn_filter,sls); dense always")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    missing = []
    for m in args.models:
        try:
            load(m)
        except SrdeployError as exc:
            missing.append(f"{m}: {exc}")
    if missing:
        print("error: cannot load\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []
    for m in args.models:
        print(f"{m}:", flush=True)
        rows += run_model(m, args)
    args.out.mkdir(parents=True, exist_ok=True)
    table = render(rows)
    print(table)
    (args.out / "table.md").write_text(table)
    (args.out / "results.json").write_text(
        json.dumps(dict(args={k: str(v) for k, v in vars(args).items()}, rows=rows), indent=1)
    )
    plot(rows, args.out / "psnr_vs_macs.png")
    print(f"wrote {args.out / 'table.md'}, results.json, psnr_vs_macs.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
