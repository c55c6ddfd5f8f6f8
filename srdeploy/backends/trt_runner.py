"""TrtRunner: a TensorRT engine on NCHW float32 numpy batches, through Polygraphy's TrtRunner.

Life cycle as for every srdeploy backend: ``TrtRunner(engine_or_onnx_path, name=None, **options)``,
``activate() -> self``, ``infer(x)``, ``deactivate()``, or ``with TrtRunner(...) as r``. A ``.plan``
is loaded (after its metadata says this GPU and TensorRT version can run it); an ``.onnx`` (a trt
profile graph) is built in memory on activation. Polygraphy allocates the device buffers and
streams: no torch. Any LR size inside the engine's optimization profile works; batches larger
than the profile's max N are split, so equal-sized tiles (runtime/tiling.py) go in one call.

Options: ``config`` (trt_config.EngineConfig for an ONNX input; default: the recipe defaults'
profile, SPARSE_WEIGHTS when the graph lists 2:4 weights) and ``allocation_strategy``
(Polygraphy's "static", "profile" or "runtime" context memory).

UNVERIFIED: never run against a real TensorRT (none can be installed on the machines it was written
on, and they have no GPU); ``pytest -m gpu`` and tools/gpu_check.sh exercise it where possible.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from srdeploy.backends.base import Latency
from srdeploy.backends.trt_config import EngineConfig, ProfileShapes
from srdeploy.errors import BackendUnavailable, SrdeployError

OPTIONS = ("config", "allocation_strategy")
_NUMPY_DTYPES = {"FLOAT": np.float32, "HALF": np.float16}


def default_config(onnx_path: Path) -> EngineConfig:
    """The recipe defaults' profile; SPARSE_WEIGHTS when the graph's metadata lists 2:4 weights."""
    import onnx

    from srdeploy.recipe import TensorRTSection

    props = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}
    sparse = bool(json.loads(props.get("srdeploy.sparse_2of4_weights", "[]")))
    return EngineConfig.from_recipe(TensorRTSection(), plan_has_2of4=sparse)


class TrtRunner:
    def __init__(self, engine_or_onnx_path: str | os.PathLike[str], name: str | None = None, **options: Any) -> None:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise SrdeployError(f"unknown TensorRT runner option(s) {unknown}", f"known options: {list(OPTIONS)}")
        self.path = Path(engine_or_onnx_path)
        self.name = name or f"tensorrt:{self.path.stem}"
        self.options = options
        self.profile: ProfileShapes | None = None
        self._runner: Any = None
        self._engine: Any = None

    # ------------------------------------------------------------------ life cycle
    def _load(self) -> Any:
        from srdeploy.backends import tensorrt as backend

        if self.path.suffix.lower() != ".onnx":
            return backend.load_engine(self.path)
        config = self.options.get("config") or default_config(self.path)
        built = backend.serialize_engine(self.path, config)
        if not built.data:
            raise backend.build_error(self.path, built.trt_version, built.log, None)
        return backend.deserialize(built.data, str(self.path))

    def activate(self) -> TrtRunner:
        if self._runner is not None:
            return self
        from polygraphy.backend.trt import TrtRunner as PolygraphyTrtRunner

        from srdeploy.backends.tensorrt import import_tensorrt
        from srdeploy.backends.trt_loaders import captured_log

        trt = import_tensorrt()
        engine = self._load()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise BackendUnavailable(f"{self.path}: expected 1 input and 1 output, got {inputs} / {outputs}", "")
        self.input, self.output = inputs[0], outputs[0]
        self._in_dtype = self._dtype(engine.get_tensor_dtype(self.input))
        lo, mid, hi = (tuple(int(d) for d in s) for s in engine.get_tensor_profile_shape(self.input, 0))
        self.profile = ProfileShapes(min=lo, opt=mid, max=hi)  # type: ignore[arg-type]
        runner = PolygraphyTrtRunner(
            engine, name=self.name, allocation_strategy=self.options.get("allocation_strategy")
        )
        with captured_log():
            runner.activate()
        self._engine, self._runner = engine, runner
        return self

    def deactivate(self) -> None:
        if self._runner is not None:
            from srdeploy.backends.trt_loaders import captured_log

            with captured_log():
                self._runner.deactivate()
        self._runner = None
        self._engine = None

    def __enter__(self) -> TrtRunner:
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    def _dtype(self, trt_dtype: Any) -> Any:
        name = getattr(trt_dtype, "name", str(trt_dtype)).rsplit(".", 1)[-1]
        if name not in _NUMPY_DTYPES:
            raise BackendUnavailable(f"{self.path}: unsupported input type {name}", "the trt graph's I/O is float32")
        return _NUMPY_DTYPES[name]

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

    def _run(self, xb: np.ndarray) -> np.ndarray:
        feed = {self.input: np.ascontiguousarray(xb, dtype=self._in_dtype)}
        out = self._runner.infer(feed)[self.output]
        return np.array(out, dtype=np.float32)  # a copy: Polygraphy reuses its host output buffer

    def infer(self, x: np.ndarray) -> np.ndarray:
        """(N,3,H,W) float32 [0,1] -> (N,3,sH,sW) float32; N beyond the profile is split."""
        self.activate()
        x = self._check(x)
        assert self.profile is not None
        step = max(1, self.profile.max[0])
        parts = [self._run(x[i : i + step]) for i in range(0, x.shape[0], step)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def latency(self, x: np.ndarray, warmup: int = 3, repeats: int = 10) -> Latency:
        """Host wall time of one execution with the input already on the GPU and the output left
        there (Polygraphy's ``last_inference_time``: binding, enqueue and stream synchronize)."""
        from polygraphy import cuda
        from polygraphy.datatype import DataType

        self.activate()
        assert self.profile is not None
        xb = np.ascontiguousarray(self._check(x)[: self.profile.max[0]], dtype=self._in_dtype)
        times = []
        with cuda.DeviceArray(shape=xb.shape, dtype=DataType.from_dtype(xb.dtype)) as device_x:
            device_x.copy_from(xb)
            feed = {self.input: device_x}
            for i in range(warmup + repeats):
                self._runner.infer(feed, copy_outputs_to_host=False)
                if i >= warmup:
                    times.append(self._runner.last_inference_time() * 1000.0)
        return Latency(median_ms=statistics.median(times), min_ms=min(times), repeats=repeats)
