"""TrtRunner: run a TensorRT engine on NCHW float32 numpy batches, I/O through torch CUDA tensors.

activate / infer / deactivate like the other runners (backends/base.py). Any LR size inside the
engine's optimization profile works; batches larger than the profile's max N are split, so equal
sized tiles (runtime/tiling.py) can be passed in one call. Imports tensorrt and torch lazily.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from srdeploy.backends.base import Latency
from srdeploy.backends.trt_config import ProfileShapes
from srdeploy.errors import BackendUnavailable, SrdeployError

_TORCH_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT32": "int32", "INT8": "int8"}


class TrtRunner:
    def __init__(self, engine_path: str | os.PathLike[str], name: str | None = None) -> None:
        self.path = Path(engine_path)
        self.name = name or f"tensorrt:{self.path.stem}"
        self._engine: Any = None
        self._context: Any = None
        self.profile: ProfileShapes | None = None

    # ------------------------------------------------------------------ life cycle
    def activate(self) -> TrtRunner:
        if self._context is not None:
            return self
        from srdeploy.backends.tensorrt import load_engine

        trt, self._runtime, engine = load_engine(self.path)
        import torch

        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise BackendUnavailable(f"{self.path}: expected 1 input and 1 output, got {inputs} / {outputs}", "")
        self._torch, self._engine = torch, engine
        self.input, self.output = inputs[0], outputs[0]
        self._in_dtype = self._dtype(engine.get_tensor_dtype(self.input))
        self._out_dtype = self._dtype(engine.get_tensor_dtype(self.output))
        lo, mid, hi = (tuple(int(d) for d in s) for s in engine.get_tensor_profile_shape(self.input, 0))
        self.profile = ProfileShapes(min=lo, opt=mid, max=hi)  # type: ignore[arg-type]
        self._device = torch.device("cuda", torch.cuda.current_device())
        self._stream = torch.cuda.Stream(device=self._device)
        self._context = engine.create_execution_context()
        return self

    def deactivate(self) -> None:
        self._context = None
        self._engine = None
        self._runtime = None

    def __enter__(self) -> TrtRunner:
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    def _dtype(self, trt_dtype: Any) -> Any:
        import torch

        name = getattr(trt_dtype, "name", str(trt_dtype)).rsplit(".", 1)[-1]
        if name not in _TORCH_DTYPES:
            raise BackendUnavailable(f"{self.path}: unsupported I/O type {name}", "the trt graph's I/O is float32")
        return getattr(torch, _TORCH_DTYPES[name])

    # ------------------------------------------------------------------ inference
    def _check(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        assert self.profile is not None
        p = self.profile
        if x.ndim != 4 or x.shape[1] != p.min[1]:
            raise SrdeployError(f"expected (N,{p.min[1]},H,W) float32, got shape {x.shape}", "pass NCHW RGB batches")
        if not (p.min[2] <= x.shape[2] <= p.max[2] and p.min[3] <= x.shape[3] <= p.max[3]):
            raise SrdeployError(
                f"LR size {x.shape[2]}x{x.shape[3]} is outside the engine's profile "
                f"({p.min[2]}x{p.min[3]} .. {p.max[2]}x{p.max[3]})",
                "tile the image (runtime/tiling.py) or rebuild with a larger tensorrt.max_shape",
            )
        return x

    def _bind(self, x_dev: Any) -> Any:
        """Set shapes and addresses for a device input; returns the device output tensor."""
        ctx = self._context
        if not ctx.set_input_shape(self.input, tuple(x_dev.shape)):
            raise SrdeployError(f"TensorRT refused input shape {tuple(x_dev.shape)}", "stay inside the profile")
        shape = tuple(int(d) for d in ctx.get_tensor_shape(self.output))
        y = self._torch.empty(shape, dtype=self._out_dtype, device=self._device)
        ctx.set_tensor_address(self.input, int(x_dev.data_ptr()))
        ctx.set_tensor_address(self.output, int(y.data_ptr()))
        return y

    def _execute(self) -> None:
        if not self._context.execute_async_v3(self._stream.cuda_stream):
            raise SrdeployError(f"TensorRT execution failed for {self.path}", "see the TensorRT log above")

    def _run(self, xb: np.ndarray) -> np.ndarray:
        torch = self._torch
        x_dev = torch.from_numpy(xb).to(self._device).to(self._in_dtype).contiguous()
        y = self._bind(x_dev)
        self._stream.wait_stream(torch.cuda.current_stream(self._device))  # the upload ran on that stream
        self._execute()
        self._stream.synchronize()
        return y.float().cpu().numpy()

    def infer(self, x: np.ndarray) -> np.ndarray:
        """(N,3,H,W) float32 [0,1] -> (N,3,sH,sW) float32; N beyond the profile is split."""
        self.activate()
        x = self._check(x)
        assert self.profile is not None
        step = self.profile.max[0]
        parts = [self._run(x[i : i + step]) for i in range(0, x.shape[0], step)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def infer_tiles(self, tiles: np.ndarray) -> np.ndarray:
        """Equal-sized LR tiles (T,3,h,w) in batches of the profile's max N."""
        return self.infer(tiles)

    def latency(self, x: np.ndarray, warmup: int = 3, repeats: int = 10) -> Latency:
        """GPU time of one execution (input already on the device), median over ``repeats``."""
        self.activate()
        x = self._check(x)
        torch = self._torch
        x_dev = torch.from_numpy(x[: self.profile.max[0]]).to(self._device).to(self._in_dtype).contiguous()
        self._bind(x_dev)
        self._stream.wait_stream(torch.cuda.current_stream(self._device))
        for _ in range(warmup):
            self._execute()
        times = []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(self._stream)
            self._execute()
            end.record(self._stream)
            end.synchronize()
            times.append(float(start.elapsed_time(end)))
        return Latency(median_ms=statistics.median(times), min_ms=min(times), repeats=repeats)
