"""A validated build's accuracy by content category, as a benchmark document (docs/results/*.json, rendered
into docs/BENCHMARKS.md by tools/render_benchmarks.py): executions, per-category mean/worst drop, the three
worst images, tier usage. Reads only the build's report.json (what `srdeploy build` or `srdeploy validate`
wrote); the machine recorded is the one in that report.

    srdeploy build --recipe recipes/int8_edsr_x4.yaml --out /tmp/int8_default
    python tools/bench_categories.py /tmp/int8_default --out docs/results/int8_default_by_category.json \\
        --command "srdeploy build --recipe recipes/int8_edsr_x4.yaml --out /tmp/int8_default"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DEPLOYED = ("onnxruntime:ort", "onnxruntime:trt")


def executions_table(report: dict[str, Any]) -> dict[str, Any]:
    cols = ["execution", "Y-PSNR", "SSIM", "drop vs fp32 dB", "sim-vs-deployed agreement (min dB)", "tiers used"]
    rows = [
        [s["execution"], s["psnr_y"], s["ssim_y"], s["psnr_drop_db"], s.get("agreement_min_db"), _usage(s, report)]
        for s in report["summary"]
    ]
    return dict(caption="Executions", columns=cols, rows=rows)


def _usage(summary: dict[str, Any], report: dict[str, Any]) -> str:
    names = {t["index"]: t["name"] for t in report.get("quantization", {}).get("tiers", [])}
    usage = summary.get("tier_usage") or {}
    return ", ".join(f"{names.get(int(k), k)}: {v}" for k, v in sorted(usage.items(), key=lambda kv: int(kv[0])))


def category_table(content: dict[str, Any], executions: list[str]) -> dict[str, Any]:
    cats = sorted(set().union(*(content[e]["by_category"] for e in executions)))
    cols = ["category", "images"] + [f"{e} {k}" for e in executions for k in ("mean drop", "worst drop", "worst image")]
    rows = []
    for c in cats:
        first = content[executions[0]]["by_category"][c]
        row: list[Any] = [c, first["images"]]
        for e in executions:
            v = content[e]["by_category"][c]
            row += [round(v["mean_drop_db"], 3), round(v["worst_drop_db"], 3), v["worst_image"]]
        rows.append(row)
    return dict(caption="By content category", columns=cols, rows=rows)


def worst_table(content: dict[str, Any], executions: list[str]) -> dict[str, Any]:
    rows = [
        [e, *(f"{w['image']} ({w['category']}) {w['drop_db']:.3f}" for w in content[e]["worst_images"])]
        for e in executions
    ]
    return dict(caption="Three worst images", columns=["execution", "1st", "2nd", "3rd"], rows=rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", type=Path, help="validated build folder (its report.json)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--command", action="append", default=[], help="the command(s) that made the build")
    ap.add_argument("--title", default=None)
    ap.add_argument("--order", type=int, default=20)
    ap.add_argument("--note", action="append", default=[])
    args = ap.parse_args()
    path = args.build / "report.json"
    if not path.is_file():
        sys.exit(f"error: {path} not found — validate the build first (srdeploy validate {args.build})")
    report = json.loads(path.read_text())
    content = report.get("content") or {}
    executions = [e for e in DEPLOYED if e in content] or sorted(content)
    if not executions:
        sys.exit(f"error: {path} has no per-category content (validate on a set with categories.json)")
    q = report.get("quantization", {})
    doc = dict(
        title=args.title or f"{report['recipe']['name']} on {report.get('dataset')}, by content category",
        order=args.order,
        command=args.command or [f"srdeploy validate {args.build}"],
        machine=report.get("machine"),
        intro=[
            f"{report['model']['name']}: {q.get('method')} W{q.get('weight_bits')}A{q.get('act_bits')}, tiers "
            f"{', '.join(t['name'] for t in q.get('tiers', []))}, FAB {q.get('fab')} over the images validated; "
            f"Y-PSNR drop vs the fp32 model on every image of '{report.get('dataset')}'."
        ],
        tables=[executions_table(report), category_table(content, executions), worst_table(content, executions)],
        notes=args.note,
        float_tier=report.get("float_tier"),
        content={e: content[e] for e in executions},
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
