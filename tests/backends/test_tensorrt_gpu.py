"""Real TensorRT (10 or 11) on a real NVIDIA GPU; every test skips cleanly without them.

test_api_names_exist needs only an importable tensorrt: every class, method, property and enum
member that srdeploy's backend uses directly (Polygraphy covers its own) exists in the installed
version. test_create_config_sets_the_policy runs Polygraphy's CreateConfig on a real builder. The
rest build an engine from a real trt rewrite of a tiny EDSR (2:4 body weights) and check inference
against ONNX Runtime (Polygraphy's Comparator), inspection against the plan, the sparsity log,
latency, in-memory builds from an ONNX path, and refusal of an engine from another version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from srtest import exported, params, plan_for, recipe, tiny_edsr

from srdeploy.errors import SrdeployError
from srdeploy.passes.rewrite import rewrite

pytestmark = pytest.mark.gpu

API_NAMES = {
    "": "MemoryPoolType HardwareCompatibilityLevel ProfilingVerbosity NetworkDefinitionCreationFlag "
    "TensorIOMode LayerInformationFormat DataType BuilderFlag __version__",
    "ICudaEngine": "create_execution_context num_io_tensors get_tensor_name get_tensor_mode "
    "get_tensor_profile_shape get_tensor_dtype create_engine_inspector",
    "IExecutionContext": "set_input_shape",
    "EngineInspector": "execution_context get_engine_information",
    "BuilderFlag": "SPARSE_WEIGHTS VERSION_COMPATIBLE",
    "MemoryPoolType": "WORKSPACE",
    "HardwareCompatibilityLevel": "NONE AMPERE_PLUS",
    "ProfilingVerbosity": "DETAILED",
    "NetworkDefinitionCreationFlag": "STRONGLY_TYPED",
    "TensorIOMode": "INPUT OUTPUT",
    "LayerInformationFormat": "JSON",
    "DataType": "FLOAT HALF",
}


def _trt() -> Any:
    why = "TensorRT is not installed (pip install 'srdeploy[tensorrt-cu12]' or '[tensorrt-cu13]', README: TensorRT)"
    return pytest.importorskip("tensorrt", reason=why)


def test_api_names_exist() -> None:
    trt = _trt()
    missing = []
    for owner, names in API_NAMES.items():
        obj = getattr(trt, owner) if owner else trt
        missing += [f"{owner or 'tensorrt'}.{n}" for n in names.split() if not hasattr(obj, n)]
    from srdeploy.backends.trt_config import version_tuple

    if version_tuple(trt.__version__)[:2] >= (10, 9) and not hasattr(
        trt.HardwareCompatibilityLevel, "SAME_COMPUTE_CAPABILITY"
    ):
        missing.append("HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY")  # trt_config assumes it from 10.9
    assert not missing, f"TensorRT {trt.__version__} lacks {missing}"


@pytest.fixture(scope="module")
def gpu() -> tuple[str, tuple[int, int]]:
    _trt()
    from srdeploy.backends.tensorrt import capabilities, cuda_device

    caps = capabilities()
    if not caps.available:
        pytest.skip(caps.reason)
    return cuda_device()


def test_create_config_sets_the_policy(gpu, tmp_path: Path) -> None:
    import tensorrt as trt
    from polygraphy.backend.trt import CreateNetwork

    from srdeploy.backends.tensorrt import enum_resolver
    from srdeploy.backends.trt_config import EngineConfig, ProfileShapes
    from srdeploy.backends.trt_loaders import create_config

    profile = ProfileShapes.from_nhw((1, 8, 8), (1, 32, 32), (4, 64, 64))
    cfg = EngineConfig(profile=profile, workspace_bytes=1 << 28, sparse_weights=True)
    settings = cfg.builder_settings(int(trt.__version__.split(".")[0]), trt.__version__)
    builder, network = CreateNetwork(strongly_typed="STRONGLY_TYPED" in settings.network_flags)()
    network.add_input("input", trt.float32, (-1, 3, -1, -1))
    config = create_config(settings, profile, "input", tmp_path / "c.timing-cache", enum_resolver(trt))(
        builder, network
    )
    assert config.get_flag(trt.BuilderFlag.SPARSE_WEIGHTS)
    assert not config.get_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) == 1 << 28
    assert config.profiling_verbosity == trt.ProfilingVerbosity.DETAILED
    assert config.num_optimization_profiles == 1


@pytest.fixture(scope="module")
def built(gpu, tmp_path_factory: pytest.TempPathFactory):
    from srdeploy.backends.tensorrt import build_engine
    from srdeploy.backends.trt_config import EngineConfig, ProfileShapes

    tmp = tmp_path_factory.mktemp("trt")
    model = tiny_edsr(feats=16)
    fp32, g = exported(model, tmp)
    r = recipe(dict(weight_bits=8, act_bits=8, method="mse"), sparsity={"policy": "uniform", "refit": False})
    plan = plan_for(model, fp32, g, r)
    trt_model, _ = rewrite(fp32, plan, "trt", 0, params(model, plan))
    onnx_path = tmp / "trt" / "model.onnx"
    onnx_path.parent.mkdir()
    onnx.save(trt_model, onnx_path)
    profile = ProfileShapes.from_nhw((1, 8, 8), (1, 32, 32), (4, 64, 64))
    config = EngineConfig(profile=profile, workspace_bytes=1 << 30, sparse_weights=True, timing_cache_dir=str(tmp))
    return plan, onnx_path, build_engine(onnx_path, config, tmp / "engines"), tmp


def test_build_writes_engine_metadata_log_and_cache(built, gpu) -> None:
    import tensorrt as trt

    _, _, art, tmp = built
    assert art.engine_path.name == "engine.plan" and art.engine_path.stat().st_size > 0
    assert art.metadata["tensorrt_version"] == trt.__version__
    assert art.metadata["compute_capability"] == f"{gpu[1][0]}.{gpu[1][1]}"
    assert "SPARSE_WEIGHTS" in art.metadata["flags"]["builder"]
    assert list(tmp.glob("*.timing-cache")), "timing cache not saved"
    assert "[srdeploy] timing cache:" in art.log_path.read_text()
    if gpu[1] >= (8, 0):
        assert "(Sparsity)" in art.log_path.read_text(), "sparsity report missing from the captured build log"


def test_runner_matches_onnxruntime_any_size_and_batch(built) -> None:
    from srdeploy.backends.comparator import compare_runners
    from srdeploy.backends.ort import OrtRunner
    from srdeploy.backends.tensorrt import TrtRunner

    _, onnx_path, art, _ = built
    x = np.random.default_rng(0).random((6, 3, 20, 28), dtype=np.float32)  # N > profile max (4): split
    with TrtRunner(art.engine_path) as runner:
        y = runner.infer(x)
        single = runner.infer(x[5:6])
        with pytest.raises(SrdeployError, match="outside the engine's profile"):
            runner.infer(np.zeros((1, 3, 8, 100), np.float32))
        latency = runner.latency(x[:2], warmup=2, repeats=5)
        agreement = compare_runners(OrtRunner(onnx_path), runner, [x[:2], x[2:4]], psnr_db=35.0, snr_db=25.0)
    assert y.shape == (6, 3, 40, 56) and y.dtype == np.float32
    np.testing.assert_allclose(single, y[5:6], atol=2e-3)
    assert agreement.passed, agreement.text()
    assert 0 < latency.min_ms <= latency.median_ms


def test_runner_builds_from_an_onnx_path_in_memory(built) -> None:
    from srdeploy.backends.tensorrt import TrtRunner
    from srdeploy.backends.trt_config import EngineConfig, ProfileShapes

    _, onnx_path, art, _ = built
    config = EngineConfig(profile=ProfileShapes.from_nhw((1, 8, 8), (1, 16, 16), (2, 32, 32)))
    x = np.random.default_rng(1).random((2, 3, 16, 16), dtype=np.float32)
    with TrtRunner(onnx_path, config=config) as from_onnx, TrtRunner(art.engine_path) as from_plan:
        assert from_onnx.profile is not None and from_onnx.profile.max == (2, 3, 32, 32)
        np.testing.assert_allclose(from_onnx.infer(x), from_plan.infer(x), atol=2e-2)


def test_inspection_matches_the_plan(built) -> None:
    from srdeploy.backends.tensorrt import inspect_engine
    from srdeploy.backends.trt_report import compare_engine_to_plan, summarize

    plan, _, art, _ = built
    layers = inspect_engine(art.engine_path)
    assert layers and all("Name" in layer for layer in layers)
    rows = compare_engine_to_plan(layers, plan, art.sparsity)
    text = "\n".join(f"[{r['status']}] {r['text']} <- {r['engine_layer']}" for r in rows)
    quantized = [r for r in rows if r["planned_precision"] == "INT8"]
    assert quantized and all(r["built_precision"] == "INT8" for r in quantized), text
    assert summarize(rows)["ok"], text


def test_engine_from_another_version_is_refused(built, tmp_path: Path) -> None:
    import json

    from srdeploy.backends.tensorrt import TrtRunner
    from srdeploy.errors import BackendUnavailable

    _, _, art, _ = built
    copy = tmp_path / "engine.plan"
    copy.write_bytes(art.engine_path.read_bytes())
    copy.with_suffix(".json").write_text(json.dumps({**art.metadata, "tensorrt_version": "9.0.0"}))
    with pytest.raises(BackendUnavailable, match="rebuild"):
        TrtRunner(copy).activate()
