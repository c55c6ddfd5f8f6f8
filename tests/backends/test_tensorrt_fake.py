"""The TensorRT backend's own logic, run everywhere against a stand-in `tensorrt` module.

The fake implements only the calls backends/tensorrt.py makes (names checked against the real
bindings in test_tensorrt_gpu.py::test_api_names_exist), so flags, profiles, parser errors, timing
cache, sparsity log capture, file layout and inspector wiring are tested without a GPU.
Also: importing the backend loads neither tensorrt nor torch, and tools/gpu_check.sh's exit codes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import onnx
import pytest
from onnx import TensorProto, helper
from srtest import REPO

import srdeploy.backends.tensorrt as backend
from srdeploy.backends.trt_config import EngineBuildError, EngineConfig, ProfileShapes
from srdeploy.errors import BackendUnavailable

SPARSE_LINE = "(Sparsity) Layers eligible for sparse math: body.0.body.0:Conv + body.0.body.1:Relu"


def _enum(*names: str) -> SimpleNamespace:
    return SimpleNamespace(**{n: SimpleNamespace(name=n) for n in names})


class FakeTrt:
    """Records what the backend asks for; ``parse_ok``/``build_ok`` choose the outcome."""

    def __init__(self, version: str = "10.8.0.43", parse_ok: bool = True, build_ok: bool = True) -> None:
        self.__version__, self.calls = version, {}
        fake = self

        class ILogger:
            def __init__(self) -> None:
                fake.calls["logger_init"] = True

        class Config:
            def __init__(self) -> None:
                self.flags, self.pools, self.profiles = [], {}, []

            def set_flag(self, f):
                self.flags.append(f.name)

            def set_memory_pool_limit(self, pool, n):
                self.pools[pool.name] = n

            def add_optimization_profile(self, p):
                self.profiles.append(p.shapes)

            def create_timing_cache(self, data):
                return SimpleNamespace(data=bytes(data), serialize=lambda: b"TC")

            def set_timing_cache(self, cache, ignore):
                fake.calls["cache_in"] = (cache.data, ignore)

            def get_timing_cache(self):
                return SimpleNamespace(serialize=lambda: b"TC")

        class Builder:
            def __init__(self, logger) -> None:
                self.logger = logger

            def create_network(self, flags):
                fake.calls["network_flags"] = flags
                return SimpleNamespace(num_inputs=1, get_input=lambda i: SimpleNamespace(name="input"))

            def create_builder_config(self):
                fake.calls["config"] = Config()
                return fake.calls["config"]

            def create_optimization_profile(self):
                p = SimpleNamespace(shapes=None)
                p.set_shape = lambda name, lo, mid, hi: setattr(p, "shapes", (name, lo, mid, hi))
                return p

            def build_serialized_network(self, network, config):
                self.logger.log(fake.ILogger.Severity.INFO, SPARSE_LINE)
                self.logger.log(fake.ILogger.Severity.VERBOSE, "tactic chatter")
                if not build_ok:
                    self.logger.log(fake.ILogger.Severity.ERROR, "Could not find any implementation for node X")
                    return None
                return memoryview(b"PLAN")

        class OnnxParser:
            num_errors = 0 if parse_ok else 1

            def __init__(self, network, logger) -> None:
                pass

            def parse_from_file(self, path):
                fake.calls["parsed"] = path
                return parse_ok

            def get_error(self, i):
                return SimpleNamespace(node_name=lambda: "n:QLinearConv", node_operator=lambda: "QLinearConv",
                                       desc=lambda: "No importer registered for op: QLinearConv")  # fmt: skip

        ILogger.Severity = _enum("INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE")
        self.ILogger, self.Builder, self.OnnxParser = ILogger, Builder, OnnxParser
        self.BuilderFlag = _enum("SPARSE_WEIGHTS", "VERSION_COMPATIBLE")
        self.MemoryPoolType = _enum("WORKSPACE")
        self.HardwareCompatibilityLevel = _enum("NONE", "AMPERE_PLUS")
        self.ProfilingVerbosity = _enum("DETAILED")
        self.NetworkDefinitionCreationFlag = SimpleNamespace(STRONGLY_TYPED=1)


@pytest.fixture
def onnx_file(tmp_path: Path) -> Path:
    g = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "g",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 8, 8])])  # fmt: skip
    model = helper.make_model(g)
    for k, v in {"srdeploy.tier": "1", "srdeploy.tier_name": "high", "srdeploy.recipe_digest": "r0"}.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    path = tmp_path / "trt" / "tier-1.onnx"
    path.parent.mkdir()
    onnx.save(model, path)
    return path


def _install(monkeypatch: pytest.MonkeyPatch, fake: FakeTrt, cc: tuple[int, int] = (8, 6)) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(backend, "cuda_device", lambda: ("NVIDIA Fake GPU", cc))


def config(tmp_path: Path, **kw: object) -> EngineConfig:
    profile = ProfileShapes.from_nhw((1, 8, 8), (1, 32, 32), (4, 64, 64))
    return EngineConfig(profile=profile, workspace_bytes=1 << 30, timing_cache_dir=str(tmp_path / "tc"), **kw)


@pytest.mark.parametrize(("version", "flags"), [("10.8.0.43", 1 << 1), ("11.4.0.106", 0)])
def test_build_engine_sets_what_the_config_says(monkeypatch, tmp_path, onnx_file, version, flags) -> None:
    fake = FakeTrt(version)
    _install(monkeypatch, fake)
    art = backend.build_engine(onnx_file, config(tmp_path, sparse_weights=True), tmp_path / "out", tier_name="1")
    assert fake.calls["network_flags"] == flags and fake.calls["parsed"] == str(onnx_file)
    cfg = fake.calls["config"]
    assert cfg.flags == ["SPARSE_WEIGHTS"] and cfg.pools == {"WORKSPACE": 1 << 30}
    assert cfg.profiling_verbosity.name == "DETAILED" and cfg.hardware_compatibility_level.name == "NONE"
    assert cfg.builder_optimization_level == 3
    assert cfg.profiles == [("input", (1, 3, 8, 8), (1, 3, 32, 32), (4, 3, 64, 64))]
    assert art.engine_path == tmp_path / "out" / "tier-1.plan" and art.engine_path.read_bytes() == b"PLAN"
    meta = json.loads(art.metadata_path.read_text())
    assert meta["tensorrt_version"] == version and meta["tier"] == {"index": "1", "name": "high"}
    assert meta["gpu_name"] == "NVIDIA Fake GPU" and meta["compute_capability"] == "8.6"
    assert meta["recipe_digest"] == "r0" and len(meta["onnx_sha256"]) == 64
    assert art.sparsity["eligible"] == ["body.0.body.0:Conv + body.0.body.1:Relu"] == meta["sparsity"]["eligible"]
    log = art.log_path.read_text()
    assert SPARSE_LINE in log and "tactic chatter" not in log
    cache = tmp_path / "tc" / f"nvidia-fake-gpu_sm86_trt{version}.timing-cache"
    assert cache.read_bytes() == b"TC" and fake.calls["cache_in"] == (b"", False)
    backend.build_engine(onnx_file, config(tmp_path), tmp_path / "out")
    assert fake.calls["cache_in"] == (b"TC", False) and (tmp_path / "out" / "engine.plan").is_file()


def test_parser_errors_are_reported(monkeypatch, tmp_path, onnx_file) -> None:
    _install(monkeypatch, FakeTrt(parse_ok=False))
    with pytest.raises(EngineBuildError, match=r"n:QLinearConv.*No importer registered") as info:
        backend.build_engine(onnx_file, config(tmp_path), tmp_path / "out")
    assert "srdeploy lint-trt" in info.value.hint


def test_build_failure_names_the_logged_error(monkeypatch, tmp_path, onnx_file) -> None:
    _install(monkeypatch, FakeTrt(build_ok=False))
    with pytest.raises(EngineBuildError, match="Could not find any implementation"):
        backend.build_engine(onnx_file, config(tmp_path), tmp_path / "out")
    assert not (tmp_path / "out" / "engine.plan").exists() and (tmp_path / "out" / "engine.build.log").is_file()


def test_refusals(monkeypatch, tmp_path, onnx_file) -> None:
    _install(monkeypatch, FakeTrt("8.6.1"))
    with pytest.raises(BackendUnavailable, match="not supported"):
        backend.build_engine(onnx_file, config(tmp_path), tmp_path / "out")
    assert not backend.capabilities().available
    _install(monkeypatch, FakeTrt(), cc=(7, 5))
    with pytest.raises(BackendUnavailable, match=r"sm >= 8\.0"):
        backend.build_engine(onnx_file, config(tmp_path, hardware_compatibility="ampere_plus"), tmp_path / "o")
    caps = backend.capabilities()
    assert caps.available and not caps.sparse_2of4 and "TensorRT 10.8.0.43" in caps.reason


def test_inspect_engine_uses_an_execution_context_at_the_opt_shape(monkeypatch, tmp_path) -> None:
    fake, seen = FakeTrt(), {}
    fake.TensorIOMode = SimpleNamespace(INPUT="in", OUTPUT="out")
    fake.LayerInformationFormat = SimpleNamespace(JSON="json")
    context = SimpleNamespace(set_input_shape=lambda n, s: seen.setdefault("shape", (n, s)))
    inspector = SimpleNamespace(get_engine_information=lambda f: json.dumps({"Layers": [{"Name": f"x:{f}"}]}))
    engine = SimpleNamespace(
        num_io_tensors=2,
        get_tensor_name=["input", "output"].__getitem__,
        get_tensor_mode=lambda n: "in" if n == "input" else "out",
        get_tensor_profile_shape=lambda n, p: [(1, 3, 8, 8), (1, 3, 32, 32), (4, 3, 64, 64)],
        create_execution_context=lambda: context,
        create_engine_inspector=lambda: inspector,
    )
    fake.Runtime = lambda logger: SimpleNamespace(deserialize_cuda_engine=lambda data: engine)
    _install(monkeypatch, fake)
    plan = tmp_path / "engine.plan"
    plan.write_bytes(b"PLAN")
    assert backend.inspect_engine(plan) == [{"Name": "x:json"}]
    assert seen["shape"] == ("input", (1, 3, 32, 32)) and inspector.execution_context is context
    meta = dict(tensorrt_version="10.7.0", compute_capability="8.6", hardware_compatibility="none")
    plan.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(BackendUnavailable, match=r"built with TensorRT 10\.7\.0"):
        backend.inspect_engine(plan)


def test_import_loads_neither_tensorrt_nor_torch() -> None:
    code = "import sys, srdeploy.backends.tensorrt, srdeploy.backends.trt_runner; print(sorted({'tensorrt', 'torch'} & set(sys.modules)))"  # noqa: E501
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_capabilities_without_tensorrt_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails like a missing package
    caps = backend.capabilities()
    assert not caps.available and "srdeploy[tensorrt]" in caps.reason and "NVIDIA GPU" in caps.reason


def _fake_bin(tmp_path: Path, pytest_rc: int) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'Fake GPU, 8.6, 555.0'\n")
    (bin_dir / "python").write_text(f'#!/bin/sh\ncase "$*" in *"-m pytest"*) exit {pytest_rc};; esac\nexit 0\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("pytest_rc", [0, 1])
def test_gpu_check_summary_and_exit_code(tmp_path: Path, pytest_rc: int) -> None:
    bin_dir = _fake_bin(tmp_path, pytest_rc)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHON=str(bin_dir / "python"))
    env["GPU_CHECK_OUT"] = str(tmp_path / "out")
    run = subprocess.run(["bash", "tools/gpu_check.sh"], cwd=REPO, env=env, capture_output=True, text=True)
    assert run.returncode == pytest_rc, run.stderr
    assert "build:int8_edsr_x4" in run.stdout and "STEP" in run.stdout
    assert ("pytest -m gpu                    FAIL" in run.stdout) == bool(pytest_rc)


def test_gpu_check_without_nvidia_smi(tmp_path: Path) -> None:
    (tmp_path / "dirname").symlink_to(shutil.which("dirname"))  # the only tool it needs before the check
    env = dict(os.environ, PATH=str(tmp_path))
    run = subprocess.run(
        [shutil.which("bash"), "tools/gpu_check.sh"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert run.returncode == 2 and "nvidia-smi not found" in run.stderr
