"""Backend interfaces: a Runner executes one model on NCHW float32 batches; Capabilities say
what a backend can do on this machine. Runners follow an activate / infer / deactivate life."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Capabilities:
    name: str
    available: bool
    reason: str = ""
    int8: bool = False
    sparse_2of4: bool = False
    fp16: bool = False


@runtime_checkable
class Runner(Protocol):
    name: str

    def infer(self, x: np.ndarray) -> np.ndarray:
        """(N,3,H,W) float32 RGB [0,1] -> (N,3,sH,sW) float32."""
        ...


@dataclass(frozen=True)
class Latency:
    median_ms: float
    min_ms: float
    repeats: int

    def as_dict(self) -> dict[str, float]:
        return dict(median_ms=self.median_ms, min_ms=self.min_ms, repeats=self.repeats)


def measure_latency(runner: Runner, x: np.ndarray, warmup: int = 2, repeats: int = 5) -> Latency:
    for _ in range(warmup):
        runner.infer(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        runner.infer(x)
        times.append((time.perf_counter() - t0) * 1000.0)
    return Latency(median_ms=statistics.median(times), min_ms=min(times), repeats=repeats)


class TorchRunner:
    """fp32 reference or simulation: a PyTorch module on the CPU."""

    def __init__(self, module: object, name: str = "pytorch") -> None:
        import torch

        self.name = name
        self._torch = torch
        self.module = module

    def infer(self, x: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.no_grad():
            return self.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()  # type: ignore[operator]
