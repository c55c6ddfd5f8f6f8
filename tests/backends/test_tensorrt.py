"""The TensorRT backend on a machine without TensorRT or a GPU (the usual case here): it imports
nothing heavy, says precisely why it is unavailable, refuses cleanly, and picks its defaults from
the graph. Also tools/gpu_check.sh's exit codes. The GPU half is test_tensorrt_gpu.py."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from srtest import REPO, exported, params, plan_for, recipe, tiny_edsr

from srdeploy.backends import tensorrt as backend
from srdeploy.backends.cuda_device import cuda_device
from srdeploy.backends.trt_config import EngineConfig, ProfileShapes
from srdeploy.backends.trt_runner import TrtRunner, default_config
from srdeploy.errors import BackendUnavailable, SrdeployError
from srdeploy.passes.rewrite import rewrite

HAS_TRT = importlib.util.find_spec("tensorrt") is not None
no_trt = pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed here: test_tensorrt_gpu.py covers it")


def test_import_loads_neither_tensorrt_nor_polygraphy_trt_nor_cuda_nor_torch() -> None:
    code = (
        "import sys, srdeploy.backends.tensorrt, srdeploy.backends.trt_runner, srdeploy.backends.comparator\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorrt', 'torch', 'cuda', 'pycuda')\n"
        "       or m.startswith(('polygraphy.backend', 'polygraphy.cuda', 'polygraphy.comparator'))]\n"
        "print(sorted(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


@no_trt
def test_capabilities_name_the_missing_tensorrt_module_and_the_install() -> None:
    caps = backend.capabilities()
    assert not caps.available and not (caps.int8 or caps.fp16 or caps.sparse_2of4)
    assert "tensorrt module is not importable" in caps.reason and "srdeploy[tensorrt-cu12]" in caps.reason
    assert "NVIDIA GPU" in caps.reason


def _gpu_visible() -> bool:
    try:
        cuda_device()
    except BackendUnavailable:
        return False
    return True


@pytest.mark.skipif(_gpu_visible(), reason="a CUDA GPU is visible here")
def test_cuda_device_without_a_gpu_says_what_the_cuda_runtime_answered() -> None:
    with pytest.raises(BackendUnavailable) as info:
        cuda_device()
    text = str(info.value)
    # a CUDA toolkit without a driver answers cudaErrorInsufficientDriver; no toolkit: libcudart is missing
    assert "no usable CUDA GPU" in text or "libcudart" in text
    assert "nvidia-smi" in text


@no_trt
def test_build_and_runner_refuse_without_tensorrt(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"")
    profile = ProfileShapes.from_nhw((1, 8, 8), (1, 16, 16), (1, 32, 32))
    with pytest.raises(BackendUnavailable, match="tensorrt module"):
        backend.build_engine(tmp_path / "m.onnx", EngineConfig(profile=profile), tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.plan"))
    runner = TrtRunner(tmp_path / "engine.plan", name="trt")
    with pytest.raises(BackendUnavailable, match="tensorrt module"):
        runner.activate()
    with pytest.raises(BackendUnavailable, match="tensorrt module"):
        runner.infer(np.zeros((1, 3, 8, 8), np.float32))
    runner.deactivate()  # never activated: nothing to release, no error


def test_unknown_runner_option_is_refused() -> None:
    with pytest.raises(SrdeployError, match=r"unknown TensorRT runner option.*threads"):
        TrtRunner("engine.plan", threads=2)
    runner = TrtRunner("x/tier-1.plan", allocation_strategy="runtime")
    assert runner.name == "tensorrt:tier-1" and runner.options == {"allocation_strategy": "runtime"}


def test_default_config_for_an_onnx_follows_its_2of4_metadata(tmp_path: Path) -> None:
    model = tiny_edsr(feats=8)
    fp32, g = exported(model, tmp_path)
    quant = dict(weight_bits=8, act_bits=8, method="minmax")
    for name, policy in (("dense", "none"), ("sparse", "uniform")):
        plan = plan_for(model, fp32, g, recipe(quant, sparsity={"policy": policy, "refit": False}), 4)
        onnx.save(rewrite(fp32, plan, "trt", 0, params(model, plan))[0], tmp_path / f"{name}.onnx")
    dense, sparse = default_config(tmp_path / "dense.onnx"), default_config(tmp_path / "sparse.onnx")
    assert not dense.sparse_weights and sparse.sparse_weights
    assert dense.profile.as_dict() == dict(min=[1, 3, 16, 16], opt=[1, 3, 256, 256], max=[4, 3, 720, 1280])


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


@no_trt
def test_gpu_check_on_this_machine_says_why_it_cannot_run(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: Fake'\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHON=sys.executable)
    run = subprocess.run(["bash", "tools/gpu_check.sh"], cwd=REPO, env=env, capture_output=True, text=True)
    assert run.returncode == 2 and "tensorrt is not importable" in run.stderr
