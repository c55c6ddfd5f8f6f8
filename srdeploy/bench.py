"""``srdeploy bench``: latency of every backend x profile graph of a build folder, with the fp32
baselines of the same runtimes, timed round-robin in one process (medians).

Interleaving matters on shared or thermally limited machines: a load spike or a clock change hits
every execution alike instead of one, so the ratios stay meaningful even when absolute times drift.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srdeploy import machine
from srdeploy.buildfolder import BuildFolder
from srdeploy.errors import BuildFolderError, SrdeployError

RUNTIMES = ("onnxruntime", "openvino")
# The CPU plugin reads IR and ONNX; ONNX Runtime only ONNX.
IR_PROFILES = {"openvino": "model.xml"}


@dataclass(frozen=True)
class Graph:
    label: str  # "fp32" or the profile name
    path: Path


def machine_info() -> dict[str, Any]:
    """CPU model, the ISA flags that decide INT8/BF16 kernels, core count and runtime versions."""
    return machine.machine_info(("onnxruntime", "openvino"))


def build_graphs(build_dir: Path) -> list[Graph]:
    """fp32.onnx, then each profile's default-tier model that the build wrote."""
    folder = BuildFolder(Path(build_dir))
    if not folder.root.is_dir():
        raise BuildFolderError(f"build folder not found: {build_dir}", "pass the folder `srdeploy build` wrote")
    folder.manifest()  # raises for foreign or older formats
    graphs = [Graph("fp32", folder.fp32_onnx)] if folder.fp32_onnx.is_file() else []
    default = _default_tier(folder)
    for sub in sorted(p for p in folder.root.iterdir() if p.is_dir()):
        ir = sub / IR_PROFILES.get(sub.name, "")
        if sub.name in IR_PROFILES and ir.is_file():
            graphs.append(Graph(sub.name, ir))
            continue
        tiers = folder.profile_models(sub.name)
        if tiers:
            graphs.append(Graph(sub.name, tiers.get(default, tiers[min(tiers)])))
    if len(graphs) < 2:
        raise BuildFolderError(f"{build_dir} has no fp32.onnx and profile model to compare", "rebuild the folder")
    return graphs


def _default_tier(folder: BuildFolder) -> int:
    import json

    try:
        return int(json.loads(folder.tiers_json.read_text()).get("default_tier", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def make_runner(runtime: str, path: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    if runtime == "onnxruntime":
        from srdeploy.backends.ort import OrtRunner

        return OrtRunner(path, threads=threads).infer
    if runtime == "openvino":
        from srdeploy.backends.openvino import OpenVinoRunner

        return OpenVinoRunner(path, threads=threads).activate().infer
    raise SrdeployError(f"unknown runtime {runtime!r}", f"use one of {', '.join(RUNTIMES)}")


def interleaved_ms(
    runners: dict[str, Callable[[np.ndarray], np.ndarray]], x: np.ndarray, warmup: int, repeats: int
) -> dict[str, list[float]]:
    """Round-robin timing: each round runs every runner once, so drift hits all of them alike."""
    for run in runners.values():
        for _ in range(warmup):
            run(x)
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(repeats):
        for key, run in runners.items():
            t0 = time.perf_counter()
            run(x)
            times[key].append((time.perf_counter() - t0) * 1e3)
    return times


def _available_runtimes(runtimes: tuple[str, ...]) -> tuple[list[str], list[dict[str, str]]]:
    from srdeploy.backends import openvino, ort

    caps = {"onnxruntime": ort.capabilities, "openvino": openvino.capabilities}
    usable, skipped = [], []
    for name in runtimes:
        if name not in caps:
            raise SrdeployError(f"unknown runtime {name!r}", f"use one of {', '.join(RUNTIMES)}")
        c = caps[name]()
        if c.available:
            usable.append(name)
        else:
            skipped.append(dict(runtime=name, graph="*", reason=c.reason))
    return usable, skipped


def bench(
    build_dir: str | os.PathLike[str],
    size: int = 256,
    threads: int = 2,
    repeats: int = 5,
    warmup: int = 1,
    runtimes: tuple[str, ...] = RUNTIMES,
) -> dict[str, Any]:
    """Time every runtime x graph of a build on one random ``size`` x ``size`` LR input.

    Rows carry the median and min of ``repeats`` round-robin runs, LR megapixels per second, and
    speedups against the same runtime's fp32 graph and against ONNX Runtime fp32. Graphs a runtime
    cannot load, and runtimes not installed, are listed under ``skipped`` with the reason.
    """
    if size < 8 or threads < 1 or repeats < 1 or warmup < 0:
        raise SrdeployError(
            f"invalid size={size} / threads={threads} / repeats={repeats} / warmup={warmup}",
            "use size >= 8, threads >= 1, repeats >= 1, warmup >= 0",
        )
    graphs = build_graphs(Path(build_dir))
    usable, skipped = _available_runtimes(runtimes)
    runners: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    keys: dict[str, tuple[str, Graph]] = {}
    for runtime in usable:
        for g in graphs:
            if runtime != "openvino" and g.path.suffix != ".onnx":
                continue
            key = f"{runtime}:{g.label}"
            try:
                runners[key] = make_runner(runtime, g.path, threads)
            except SrdeployError as exc:
                skipped.append(dict(runtime=runtime, graph=g.label, reason=str(exc)))
                continue
            keys[key] = (runtime, g)
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    times = interleaved_ms(runners, x, warmup, repeats)
    rows = [_row(key, keys[key], t, size) for key, t in times.items()]
    _add_speedups(rows)
    return dict(
        build=str(build_dir),
        size=size,
        threads=threads,
        repeats=repeats,
        warmup=warmup,
        machine=machine_info(),
        rows=rows,
        skipped=skipped,
    )


def _row(key: str, what: tuple[str, Graph], times: list[float], size: int) -> dict[str, Any]:
    runtime, g = what
    median = statistics.median(times)
    return dict(
        key=key,
        runtime=runtime,
        graph=g.label,
        path=str(g.path),
        median_ms=median,
        min_ms=min(times),
        times_ms=times,
        lr_mp_per_s=size * size / 1e6 / (median / 1e3),
    )


def _add_speedups(rows: list[dict[str, Any]]) -> None:
    fp32 = {r["runtime"]: r["median_ms"] for r in rows if r["graph"] == "fp32"}
    ort_fp32 = fp32.get("onnxruntime")
    for r in rows:
        base = fp32.get(r["runtime"])
        r["vs_runtime_fp32"] = None if base is None else base / r["median_ms"]
        r["vs_ort_fp32"] = None if ort_fp32 is None else ort_fp32 / r["median_ms"]


def bench_table(result: dict[str, Any]) -> Any:
    """A rich Table of ``bench``'s result (for the CLI)."""
    from rich.table import Table

    m = result["machine"]
    title = (
        f"{result['build']}: {result['size']}x{result['size']} LR, {result['threads']} threads, "
        f"median of {result['repeats']}; {m['cpu']} ({', '.join(m['isa']) or 'no AVX2'})"
    )
    table = Table(title=title)
    for col in ("runtime", "graph", "median ms", "min ms", "LR MP/s", "vs same-runtime fp32", "vs ORT fp32"):
        table.add_column(col, justify="left" if col in ("runtime", "graph") else "right")
    fmt = lambda v: "–" if v is None else f"{v:.2f}x"  # noqa: E731
    for r in result["rows"]:
        table.add_row(
            r["runtime"], r["graph"], f"{r['median_ms']:.1f}", f"{r['min_ms']:.1f}", f"{r['lr_mp_per_s']:.4f}",
            fmt(r["vs_runtime_fp32"]), fmt(r["vs_ort_fp32"]),
        )  # fmt: skip
    for s in result["skipped"]:
        table.add_row(s["runtime"], s["graph"], "skipped", "", "", "", s["reason"][:80])
    return table
