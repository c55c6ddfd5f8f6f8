"""Backend interfaces: a Runner executes one model on NCHW float32 batches; Capabilities say what a
backend can do on this machine. Runners follow Polygraphy's life: ``activate()`` loads (sessions,
engines, compiled models), ``infer(x)`` runs, ``deactivate()`` frees; they are context managers, and
``infer`` activates a runner that was not activated yet."""

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

    def activate(self) -> Runner: ...

    def infer(self, x: np.ndarray) -> np.ndarray:
        """(N,3,H,W) float32 RGB [0,1] -> (N,3,sH,sW) float32."""
        ...

    def deactivate(self) -> None: ...


class RunnerBase:
    """The life cycle shared by every runner: subclasses implement ``_load`` and ``_run``."""

    name: str = "runner"
    _active: bool = False

    def _load(self) -> None:
        raise NotImplementedError

    def _run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _free(self) -> None:
        """Release what ``_load`` acquired (default: nothing)."""

    def activate(self) -> RunnerBase:
        if not self._active:
            self._load()
            self._active = True
        return self

    def infer(self, x: np.ndarray) -> np.ndarray:
        self.activate()
        return self._run(np.ascontiguousarray(x, dtype=np.float32))

    def deactivate(self) -> None:
        if self._active:
            self._free()
            self._active = False

    def __enter__(self) -> RunnerBase:
        return self.activate()

    def __exit__(self, *_exc: object) -> None:
        self.deactivate()


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


class TorchRunner(RunnerBase):
    """fp32 reference or simulation: a PyTorch module on the CPU."""

    def __init__(self, module: object, name: str = "pytorch") -> None:
        self.name = name
        self.module = module

    def _load(self) -> None:
        pass

    def _run(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.module(torch.from_numpy(x)).numpy()  # type: ignore[operator]
