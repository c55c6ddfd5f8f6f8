"""Shared helpers of the benchmark scripts: evaluate ONNX files / torch modules on an image set,
time them, and print Markdown tables. Not part of the package API."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from srdeploy.data.sets import SRPair
from srdeploy.validate.metrics import psnr_y, ssim_y

Infer = Callable[[np.ndarray], np.ndarray]  # (1,3,h,w) -> (1,3,sh,sw)


def machine() -> str:
    import onnxruntime
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return (
        f"{cpu}, {os.cpu_count()} cores; torch {torch.__version__}, onnxruntime {onnxruntime.__version__}; "
        f"{time.strftime('%Y-%m-%d')}"
    )


def evaluate(infer: Infer, pairs: Sequence[SRPair], scale: int) -> dict[str, float]:
    psnrs, ssims = [], []
    for p in pairs:
        x = np.ascontiguousarray(p.lr.transpose(2, 0, 1)[None], dtype=np.float32)
        sr = infer(x)[0].transpose(1, 2, 0)
        psnrs.append(psnr_y(sr, p.hr, scale))
        ssims.append(ssim_y(sr, p.hr, scale))
    return dict(psnr_y=float(np.mean(psnrs)), ssim_y=float(np.mean(ssims)))


def ort_infer(path: Path, threads: int = 2) -> Infer:
    from srdeploy.backends.ort import OrtRunner

    return OrtRunner(path, threads=threads).infer


def torch_infer(module: Any) -> Infer:
    import torch

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(x)).numpy()

    return run


def median_ms(fn: Callable[[], object], warmup: int = 2, repeats: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def markdown_table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """columns: (key, header, format) e.g. ("psnr_y", "Y-PSNR", ".2f")."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    lines = [head, sep]
    for r in rows:
        cells = []
        for key, _, fmt in columns:
            v = r.get(key)
            cells.append("–" if v is None else (format(v, fmt) if fmt and isinstance(v, int | float) else str(v)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")


def plain_export(model: Any, path: Path, opset: int | None = None) -> Path:
    """The model as its user would export it (a copy, BatchNorm etc. folded by fuse_for_deploy), without
    srdeploy's structural folds: a build's fp32.onnx is sub-pixel folded (models/subpixel_fold.py)."""
    import copy

    from srdeploy.export import export_onnx

    plain = copy.deepcopy(model)
    plain.module.fuse_for_deploy()
    return export_onnx(plain, path) if opset is None else export_onnx(plain, path, opset=opset)
