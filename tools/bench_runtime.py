"""Benchmark the app runtime (srdeploy.runtime.Upscaler) on this machine's CPU.

    python tools/bench_runtime.py --build builds/int8_edsr_x4 [--build2 builds/other] \\
        --size 256 --threads 2 --repeats 5 [--tile 128] [--image photo.png]

For each build: fp32 (fp32.onnx) vs the INT8 `ort` profile, whole image vs tiled, and for tiered
builds the tiles routed by the selector plus each tier forced. Prints LR megapixels/second (median
over repeats, after one warm-up) and the peak RSS. Every row runs in a fresh process, so its peak
RSS is its own and no session, arena or page cache of another row inflates it. Numbers depend on
the machine and its load: record them with the CPU model and thread count, not as constants.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = REPO / "calib_data" / "eval" / "ocv_baboon.png"


def make_input(image: Path, size: int) -> Any:
    """A size x size RGB uint8 LR input: the image, mirrored to cover, then cropped."""
    import numpy as np
    from PIL import Image

    arr = np.asarray(Image.open(image).convert("RGB"))
    reps = (-(-size // arr.shape[0]), -(-size // arr.shape[1]), 1)
    flipped = np.concatenate([arr, arr[::-1]], axis=0)
    flipped = np.concatenate([flipped, flipped[:, ::-1]], axis=1)
    return np.ascontiguousarray(np.tile(flipped, reps)[:size, :size])


def worker(cfg: dict[str, Any]) -> dict[str, Any]:
    """One row, in its own process: load, warm up, time ``repeats`` calls, report peak RSS."""
    import resource

    from srdeploy.runtime.upscaler import Upscaler

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    img = make_input(Path(cfg["image"]), cfg["size"])
    up = Upscaler(
        cfg["model"],
        threads=cfg["threads"],
        tile=cfg["tile"],
        overlap=cfg["overlap"],
        batch_size=cfg["batch_size"],
        tier=cfg["tier"],
        max_batch_pixels=cfg["max_batch_pixels"],
    )
    up.upscale(img)  # warm-up: first-run allocations and kernel selection
    times = []
    for _ in range(cfg["repeats"]):
        t0 = time.perf_counter()
        up.upscale(img)
        times.append(time.perf_counter() - t0)
    stats = up.last_stats
    assert stats is not None
    median = statistics.median(times)
    return dict(
        seconds=median,
        mps=img.shape[0] * img.shape[1] / 1e6 / median,
        tiles=stats.tiles,
        tile=stats.tile,
        usage=stats.tiles_per_tier,
        fab=stats.fab,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        start_rss_mb=rss0 / 1024,
    )


def configs(build: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The rows for one build folder."""
    from srdeploy.runtime.sessions import load_model_set

    tiers = load_model_set(build, "ort")
    tiered = len(tiers.tiers) > 1
    base = dict(
        image=str(args.image),
        size=args.size,
        threads=args.threads,
        repeats=args.repeats,
        overlap=args.overlap,
        batch_size=args.batch_size,
        max_batch_pixels=args.max_batch_pixels,
    )
    rows = []
    for label, model in (("fp32", build / "fp32.onnx"), ("int8 ort", build)):
        for tile in (None, args.tile):
            mode = "whole" if tile is None else f"tiles {tile}+{args.overlap}"
            forced = ["auto", *sorted(tiers.tiers)] if tiered and model == build else ["auto"]
            for tier in forced:
                name = (
                    "routed" if tiered and tier == "auto" and model == build else ("" if tier == "auto" else str(tier))
                )
                rows.append(
                    dict(
                        base,
                        build=build.name,
                        label=label,
                        mode=mode,
                        tier=tier,
                        tier_label=name,
                        model=str(model),
                        tile=tile,
                    )
                )
    return rows


def run_row(cfg: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(cfg)], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        return dict(error=(proc.stderr.strip().splitlines() or ["failed"])[-1][:80])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", type=Path, help="build folder (srdeploy build)")
    ap.add_argument("--build2", type=Path, default=None, help="a second build folder to compare")
    ap.add_argument("--size", type=int, default=256, help="LR input side in pixels (square)")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per row (median reported)")
    ap.add_argument("--tile", type=int, default=128, help="LR tile for the tiled rows")
    ap.add_argument("--overlap", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-batch-pixels", type=int, default=None, help="LR pixels per call (default: runtime's)")
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="source image for the input")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.build is None:
        ap.error("--build is required")
    if args.max_batch_pixels is None:
        from srdeploy.runtime.tiling import DEFAULT_MAX_BATCH_PIXELS

        args.max_batch_pixels = DEFAULT_MAX_BATCH_PIXELS

    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    rows = [c for b in (args.build, args.build2) if b is not None for c in configs(b, args)]
    results = []
    with console.status("benchmarking") as status:
        for i, cfg in enumerate(rows, 1):
            status.update(f"[{i}/{len(rows)}] {cfg['build']}: {cfg['label']} {cfg['mode']} {cfg['tier_label']}")
            results.append({**cfg, **run_row(cfg)})
    cpu = next((ln.split(":", 1)[1].strip() for ln in _cpuinfo() if ln.startswith("model name")), "unknown CPU")
    table = Table(title=f"runtime: {args.size}x{args.size} LR, {args.threads} thread(s), {cpu}")
    for col in ("build", "model", "mode", "tier", "tiles", "usage", "FAB", "MP/s", "ms", "peak RSS MB"):
        table.add_column(col, justify="right" if col in ("tiles", "FAB", "MP/s", "ms", "peak RSS MB") else "left")
    for r in results:
        if "error" in r:
            table.add_row(r["build"], r["label"], r["mode"], r["tier_label"], "", "", "", "", "", r["error"])
            continue
        usage = " ".join(f"{k}:{v}" for k, v in r["usage"].items())
        table.add_row(
            r["build"], r["label"], r["mode"], r["tier_label"], str(r["tiles"]), usage,
            "" if r["fab"] is None else f"{r['fab']:.2f}", f"{r['mps']:.3f}", f"{r['seconds'] * 1000:.0f}",
            f"{r['peak_rss_mb']:.0f}",
        )  # fmt: skip
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


if __name__ == "__main__":
    main()
