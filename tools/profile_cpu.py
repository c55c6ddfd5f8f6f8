#!/usr/bin/env python
"""Where the CPU time goes: ONNX Runtime's profiler and OpenVINO's performance counters on one or
more graphs of a build, summed per op type (with kernel precision) and per network region.

    python tools/profile_cpu.py /tmp/ov_edsr/ort/model.onnx /tmp/ov_edsr/fp32.onnx --size 128 --json out.json

Regions come from srdeploy's node names (``<module path>:<Op>``) and the build's plan.json roles:
head, body, upsampler, tail (the float/int8 split the recipe chose); ``layout`` is the reorders
and transposes the runtimes insert. Times are the mean per run (ms) after one warm-up run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import markdown_table, save_json

from srdeploy.bench import machine_info

LAYOUT_OPS = ("Reorder", "ReorderInput", "ReorderOutput", "Transpose", "Transpose_NCHW")


def module_roles(model_path: Path) -> dict[str, str]:
    """module path -> plan role (head/body/upsampler/tail/fixed), from the build's plan.json."""
    for parent in model_path.parents:
        plan = parent / "plan.json"
        if plan.is_file():
            return {layer["module"]: layer["role"] for layer in json.loads(plan.read_text())["layers"]}
    return {}


def region(name: str, roles: dict[str, str], op: str) -> str:
    """The plan role of the conv module a node belongs to, or of its siblings (Relu, DepthToSpace)."""
    if op in LAYOUT_OPS:
        return "layout"
    path = name.split(":", 1)[0]
    parts = path.split(".")
    for k in range(len(parts), 0, -1):
        prefix = ".".join(parts[:k])
        found = {r for m, r in roles.items() if m == prefix or m.startswith(prefix + ".")}
        if len(found) == 1:
            return found.pop()
    token = path.replace("_", ".").split(".", 1)[0]
    return token if token in set(roles.values()) else "other"


def ort_profile(path: Path, x: np.ndarray, threads: int, runs: int) -> list[tuple[str, str, float]]:
    """(node name, op type, ms per run) from ORT's profiler (NCHWc convs named by their output)."""
    import onnx
    import onnxruntime as ort

    from srdeploy.backends.ort import session_options

    by_output = {o: n.name for n in onnx.load(str(path)).graph.node for o in n.output}
    with tempfile.TemporaryDirectory() as tmp:
        opts = session_options(threads)
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: x}
        sess.run(None, feed)  # warm-up, dropped below
        for _ in range(runs):
            sess.run(None, feed)
        events = json.loads(Path(sess.end_profiling()).read_text())
    per_node: dict[tuple[str, str], list[float]] = defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            raw = e["name"].removesuffix("_kernel_time")
            name = by_output.get(raw.removesuffix("_nchwc"), raw)
            per_node[(name, e["args"]["op_name"])].append(e["dur"] / 1e3)
    # Each node appears once per run; drop the warm-up occurrence.
    return [(n, op, sum(t[1:]) / runs if len(t) > runs else sum(t) / runs) for (n, op), t in per_node.items()]


def ov_profile(path: Path, x: np.ndarray, threads: int, runs: int, precision: str) -> list[tuple[str, str, float]]:
    """(layer name, 'type kernel-precision', ms per run) from OpenVINO's performance counters."""
    from srdeploy.backends.openvino import OpenVinoRunner

    totals: dict[tuple[str, str], float] = defaultdict(float)
    with OpenVinoRunner(path, threads=threads, precision=precision, perf_counters=True) as runner:
        runner.infer(x)
        for _ in range(runs):
            runner.infer(x)
            for t in runner.profile():
                kind = t.exec_type.rsplit("_", 1)[-1].upper() if "_" in t.exec_type else t.exec_type
                totals[(t.name, f"{t.layer_type} {kind}")] += t.ms / runs
    return [(n, op, ms) for (n, op), ms in totals.items()]


def summarize(nodes: list[tuple[str, str, float]], roles: dict[str, str]) -> dict[str, Any]:
    by_op: dict[str, float] = defaultdict(float)
    by_region: dict[str, float] = defaultdict(float)
    for name, op, ms in nodes:
        by_op[op] += ms
        by_region[region(name, roles, op.split(" ")[0])] += ms
    total = sum(by_op.values())
    top = sorted(nodes, key=lambda n: -n[2])[:8]
    return dict(
        total_ms=total,
        by_op=dict(sorted(by_op.items(), key=lambda kv: -kv[1])),
        by_region=dict(sorted(by_region.items(), key=lambda kv: -kv[1])),
        top_nodes=[dict(name=n, op=op, ms=ms) for n, op, ms in top],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path, help=".onnx (or OpenVINO .xml) graphs")
    ap.add_argument("--size", type=int, default=128, help="LR input side")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--runtimes", default="onnxruntime,openvino")
    ap.add_argument("--ov-precision", default="f32", help="OpenVINO float precision (f32, bf16, f16)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    x = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
    results = []
    for path in args.models:
        roles = module_roles(path.resolve())
        for runtime in args.runtimes.split(","):
            if runtime == "onnxruntime" and path.suffix != ".onnx":
                continue
            if runtime == "onnxruntime":
                nodes = ort_profile(path, x, args.threads, args.runs)
            else:
                nodes = ov_profile(path, x, args.threads, args.runs, args.ov_precision)
            summary = summarize(nodes, roles)
            results.append(dict(model=str(path), runtime=runtime, **summary))
            print(f"\n## {runtime}: {path} ({summary['total_ms']:.0f} ms per run, sum of kernels)")
            rows = [dict(k=k, ms=v, pct=100 * v / summary["total_ms"]) for k, v in summary["by_region"].items()]
            print(markdown_table(rows, [("k", "region", ""), ("ms", "ms", ".1f"), ("pct", "%", ".1f")]))
            rows = [dict(k=k, ms=v, pct=100 * v / summary["total_ms"]) for k, v in summary["by_op"].items()]
            print(markdown_table(rows, [("k", "op (kernel precision)", ""), ("ms", "ms", ".1f"), ("pct", "%", ".1f")]))
    if args.json:
        cmd = "python tools/profile_cpu.py " + " ".join(sys.argv[1:])
        save_json(
            args.json, dict(command=cmd, size=args.size, threads=args.threads, machine=machine_info(), results=results)
        )


if __name__ == "__main__":
    main()
