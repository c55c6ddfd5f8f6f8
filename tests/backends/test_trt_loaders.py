"""srdeploy's TensorRT policy through Polygraphy's real loaders (constructed without TensorRT).

Polygraphy's CreateConfig, NetworkFromOnnxPath and Profile are built here exactly as the backend
builds them; only calling them needs TensorRT. Enum members are resolved symbolically to
(enum, member) pairs, which is what the backend's resolver looks up on the tensorrt module.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from srtest import REPO

from srdeploy.backends.trt_config import BuilderSettings, EngineBuildError, EngineConfig, ProfileShapes
from srdeploy.backends.trt_loaders import (
    captured_log,
    create_config,
    errors_in,
    network_loader,
    usable_cache_path,
)
from srdeploy.backends.trt_report import parse_sparsity_log
from srdeploy.recipe import load_recipe

PRECISION_ATTRS = ("fp16", "int8", "bf16", "fp8", "tf32")


def symbolic(enum: str, member: str) -> tuple[str, str]:
    return enum, member


def recipe_config(*overrides: str, sparse: bool = False) -> EngineConfig:
    recipe = load_recipe(REPO / "recipes" / "int8_edsr_x4.yaml", list(overrides))
    return EngineConfig.from_recipe(recipe.tensorrt, plan_has_2of4=sparse)


@pytest.mark.parametrize(("major", "strongly_typed"), [(10, True), (11, False)])
def test_network_loader_is_strongly_typed_on_10_and_left_default_on_11(major: int, strongly_typed: bool) -> None:
    settings = recipe_config().builder_settings(major, f"{major}.9.0")
    loader = network_loader(Path("/x/trt/model.onnx"), settings)
    assert type(loader).__name__ == "NetworkFromOnnxPath"
    assert loader.path == "/x/trt/model.onnx" and loader.strongly_typed is strongly_typed


@pytest.mark.parametrize("major", [10, 11])
def test_create_config_carries_the_recipe_and_no_precision_flag(major: int, tmp_path: Path) -> None:
    cfg = recipe_config(
        "tensorrt.min_shape=[1, 8, 8]",
        "tensorrt.opt_shape=[1, 32, 48]",
        "tensorrt.max_shape=[2, 64, 96]",
        "tensorrt.workspace_mb=512",
        "tensorrt.hardware_compatibility=ampere_plus",
        "tensorrt.version_compatible=true",
        sparse=True,
    )
    cache = tmp_path / "gpu_sm86_trt.timing-cache"
    config = create_config(cfg.builder_settings(major, f"{major}.9.0"), cfg.profile, "input", cache, symbolic)
    assert type(config).__name__ == "CreateConfig"
    shapes = config.profiles[0]["input"]
    assert (shapes.min, shapes.opt, shapes.max) == ((1, 3, 8, 8), (1, 3, 32, 48), (2, 3, 64, 96))
    assert config.sparse_weights is True and config.version_compatible is True
    assert config.memory_pool_limits == {("MemoryPoolType", "WORKSPACE"): 512 << 20}
    assert config.hardware_compatibility_level == ("HardwareCompatibilityLevel", "AMPERE_PLUS")
    assert config.profiling_verbosity == ("ProfilingVerbosity", "DETAILED")
    assert config.builder_optimization_level == 3 and config.timing_cache_path == str(cache)
    # explicit quantization: precision comes from the graph, never from builder flags
    assert not any(getattr(config, a) for a in PRECISION_ATTRS) and config.precision_constraints is None
    assert config.calibrator is None


def test_dense_plan_leaves_sparse_weights_off_and_no_cache_means_none() -> None:
    cfg = recipe_config()
    config = create_config(cfg.builder_settings(10, "10.8.0"), cfg.profile, "lr", None, symbolic)
    assert config.sparse_weights is False and config.version_compatible is False
    assert config.hardware_compatibility_level == ("HardwareCompatibilityLevel", "NONE")
    assert config.timing_cache_path is None and list(config.profiles[0]) == ["lr"]


def test_a_builder_flag_without_a_createconfig_argument_is_refused() -> None:
    settings = BuilderSettings(10, ("STRONGLY_TYPED",), ("FP16",), (("WORKSPACE", 1),), 3, "NONE")
    profile = ProfileShapes.from_nhw((1, 8, 8), (1, 8, 8), (1, 8, 8))
    with pytest.raises(EngineBuildError, match="FP16"):
        create_config(settings, profile, "input", None, symbolic)


def test_captured_log_keeps_tensorrt_info_only_when_verbose_and_restores_the_logger() -> None:
    from polygraphy.logger import G_LOGGER

    before = (G_LOGGER.module_severity, G_LOGGER.use_python_logging_system, G_LOGGER.colors)
    line = "(Sparsity) Layers eligible for sparse math: body.0.body.0:Conv + body.0.body.1:Relu"
    for verbose in (True, False):
        with captured_log(verbose=verbose) as lines:
            G_LOGGER.verbose(line)  # Polygraphy's TensorRT logger forwards TensorRT INFO here
            G_LOGGER.extra_verbose("tactic chatter")  # ... and TensorRT VERBOSE here
            G_LOGGER.error("Could not find any implementation for node X")
            with pytest.raises(Exception, match="Invalid Engine"):
                G_LOGGER.critical("Invalid Engine. Please ensure the engine was built correctly")
        assert (f"[V] {line}" in lines) is verbose and not any("chatter" in x for x in lines)
        assert errors_in(lines) == [
            "Could not find any implementation for node X",
            "Invalid Engine. Please ensure the engine was built correctly",
        ]
    assert parse_sparsity_log([*lines, f"[V] {line}"])["eligible"] == ["body.0.body.0:Conv + body.0.body.1:Relu"]
    assert (G_LOGGER.module_severity, G_LOGGER.use_python_logging_system, G_LOGGER.colors) == before


def test_usable_cache_path(tmp_path: Path) -> None:
    notes: list[str] = []
    path = tmp_path / "new" / "gpu.timing-cache"
    assert usable_cache_path(path, notes) == path and path.parent.is_dir()
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert usable_cache_path(blocker / "gpu.timing-cache", notes) is None
    assert "building without a cache" in notes[-1]
