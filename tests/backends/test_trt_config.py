"""trt_config: profiles, builder flags per TensorRT major, timing-cache names, engine metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from srtest import REPO

from srdeploy.backends.trt_config import (
    EngineConfig,
    ProfileShapes,
    compatibility_problems,
    dumps,
    engine_metadata,
    engine_stem,
    timing_cache_path,
)
from srdeploy.errors import BackendUnavailable, RecipeError
from srdeploy.recipe import TensorRTSection, load_recipe

PRECISION_FLAGS = {"INT8", "FP16", "BF16", "FP8", "INT4", "FP4", "TF32", "OBEY_PRECISION_CONSTRAINTS"}


def test_from_recipe_defaults() -> None:
    cfg = EngineConfig.from_recipe(TensorRTSection(), plan_has_2of4=False)
    assert cfg.profile.min == (1, 3, 16, 16)
    assert cfg.profile.opt == (1, 3, 256, 256)
    assert cfg.profile.max == (4, 3, 720, 1280)
    assert cfg.workspace_bytes == 4096 * 2**20
    assert not cfg.sparse_weights and not cfg.version_compatible and cfg.hardware_compatibility == "none"


def test_sparse_flag_follows_plan_unless_recipe_says() -> None:
    assert EngineConfig.from_recipe(TensorRTSection(), plan_has_2of4=True).sparse_weights
    assert not EngineConfig.from_recipe(TensorRTSection(sparse_weights=False), plan_has_2of4=True).sparse_weights
    assert EngineConfig.from_recipe(TensorRTSection(sparse_weights=True), plan_has_2of4=False).sparse_weights


def test_from_real_recipe_with_overrides() -> None:
    recipe = load_recipe(
        REPO / "recipes" / "int8_edsr_x4.yaml",
        ["tensorrt.min_shape=[1, 8, 8]", "tensorrt.max_shape=[2, 64, 96]", "tensorrt.opt_shape=[1, 32, 32]"],
    )
    cfg = EngineConfig.from_recipe(recipe.tensorrt, plan_has_2of4=False)
    assert cfg.profile.as_dict() == dict(min=[1, 3, 8, 8], opt=[1, 3, 32, 32], max=[2, 3, 64, 96])


@pytest.mark.parametrize(
    ("lo", "mid", "hi", "multiple", "needle"),
    [
        ((1, 32, 32), (1, 16, 16), (1, 64, 64), 1, "min <= opt <= max"),
        ((1, 16, 16), (1, 32, 32), (1, 24, 64), 1, "H: need min <= opt <= max"),
        ((2, 16, 16), (1, 32, 32), (4, 64, 64), 1, "N: need"),
        ((0, 16, 16), (1, 32, 32), (4, 64, 64), 1, "positive"),
        ((1, 16, 16), (1, 30, 32), (4, 64, 64), 8, "multiples of 8"),
    ],
)
def test_profile_validation(lo, mid, hi, multiple, needle) -> None:
    with pytest.raises(RecipeError, match=needle.replace("(", r"\(")):
        ProfileShapes.from_nhw(lo, mid, hi, multiple=multiple)


def test_profile_contains() -> None:
    p = ProfileShapes.from_nhw((1, 16, 16), (1, 32, 32), (4, 64, 64), multiple=8)
    assert p.contains((2, 3, 16, 64)) and not p.contains((5, 3, 32, 32)) and not p.contains((1, 3, 8, 32))


def test_builder_settings_tensorrt_10_is_strongly_typed_without_precision_flags() -> None:
    s = EngineConfig.from_recipe(TensorRTSection(), plan_has_2of4=False).builder_settings(10, "10.8.0.43")
    assert s.network_flags == ("STRONGLY_TYPED",)
    assert s.builder_flags == ()
    assert dict(s.memory_pool_limits) == {"WORKSPACE": 4096 << 20}
    assert s.hardware_compatibility_level == "NONE" and s.profiling_verbosity == "DETAILED"
    assert s.builder_optimization_level == 3 and not s.engine_host_code_allowed


def test_builder_settings_tensorrt_11_needs_no_creation_flag() -> None:
    section = TensorRTSection(hardware_compatibility="ampere_plus", version_compatible=True, workspace_mb=1024)
    s = EngineConfig.from_recipe(section, plan_has_2of4=True).builder_settings(11, "11.4.0.106")
    assert s.network_flags == ()
    assert set(s.builder_flags) == {"SPARSE_WEIGHTS", "VERSION_COMPATIBLE"}
    assert not set(s.builder_flags) & PRECISION_FLAGS
    assert s.hardware_compatibility_level == "AMPERE_PLUS" and s.engine_host_code_allowed
    assert dict(s.memory_pool_limits) == {"WORKSPACE": 1 << 30}
    assert json.loads(json.dumps(s.as_dict()))["builder_flags"] == list(s.builder_flags)


@pytest.mark.parametrize("major", [8, 9, 12])
def test_unsupported_major_is_refused(major: int) -> None:
    with pytest.raises(BackendUnavailable, match=r"srdeploy\[tensorrt-cu12\] or \[tensorrt-cu13\]"):
        EngineConfig.from_recipe(TensorRTSection(), False).builder_settings(major, f"{major}.0.0")


def test_same_compute_capability_needs_tensorrt_10_9() -> None:
    cfg = EngineConfig.from_recipe(TensorRTSection(hardware_compatibility="same_compute_capability"), False)
    with pytest.raises(BackendUnavailable, match=r"10\.9"):
        cfg.builder_settings(10, "10.8.0.43")
    assert cfg.builder_settings(10, "10.9.0.34").hardware_compatibility_level == "SAME_COMPUTE_CAPABILITY"


def test_timing_cache_path_is_per_gpu_capability_and_version(tmp_path: Path) -> None:
    p = timing_cache_path("NVIDIA GeForce RTX 4090", (8, 9), "10.8.0.43", tmp_path)
    assert p == tmp_path / "nvidia-geforce-rtx-4090_sm89_trt10.8.0.43.timing-cache"
    assert timing_cache_path("NVIDIA GeForce RTX 4090", (8, 9), "11.4.0.106", tmp_path) != p
    odd = timing_cache_path("../../etc/passwd: A100/SXM", (8, 0), "10.0", tmp_path)
    assert odd.parent == tmp_path and "/" not in odd.name and not odd.name.startswith(".")


def test_timing_cache_default_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert timing_cache_path("A100", (8, 0), "10.8", None).parent == tmp_path / "srdeploy" / "trt"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert timing_cache_path("A100", (8, 0), "10.8", None).parent == tmp_path / "home" / ".cache" / "srdeploy" / "trt"
    assert timing_cache_path("A100", (8, 0), "10.8", "~/c").parent == tmp_path / "home" / "c"


def test_engine_metadata() -> None:
    cfg = EngineConfig.from_recipe(TensorRTSection(sparse_weights=True, version_compatible=True), False)
    settings = cfg.builder_settings(10, "10.8.0.43")
    props = {"srdeploy.recipe_digest": "abc", "srdeploy.plan_sha256": "def", "srdeploy.tier": "1"}
    props["srdeploy.tier_name"] = "base"
    meta = engine_metadata(
        cfg,
        settings,
        trt_version="10.8.0.43",
        gpu_name="NVIDIA A100",
        compute_capability=(8, 0),
        onnx_props=props,
        sparsity={"eligible": ["a"], "chosen": []},
        build_seconds=12.345,
    )
    assert meta["tensorrt_version"] == "10.8.0.43" and meta["compute_capability"] == "8.0"
    assert meta["flags"] == {"network": ["STRONGLY_TYPED"], "builder": ["SPARSE_WEIGHTS", "VERSION_COMPATIBLE"]}
    assert meta["tier"] == {"index": "1", "name": "base"}
    assert (meta["recipe_digest"], meta["plan_sha256"], meta["build_seconds"]) == ("abc", "def", 12.35)
    assert meta["profiles"] == [dict(min=[1, 3, 16, 16], opt=[1, 3, 256, 256], max=[4, 3, 720, 1280])]
    assert meta["version_compatible"] and meta["srdeploy_version"]
    assert "TensorRT 10.x >= 10.8.0.43" in meta["runs_on"] and meta["runs_on"].startswith("sm_80 GPUs")
    assert json.loads(dumps(meta)) == meta


def _meta(**kw: object) -> dict:
    base = dict(tensorrt_version="10.8.0.43", compute_capability="8.6", hardware_compatibility="none")
    return {**base, "version_compatible": False, **kw}


def test_compatibility_problems() -> None:
    assert compatibility_problems(_meta(), "10.8.0.43", (8, 6)) == []
    assert "10.9.0.34" in compatibility_problems(_meta(), "10.9.0.34", (8, 6))[0]
    assert "compute capability 8.6" in compatibility_problems(_meta(), "10.8.0.43", (8, 9))[0]
    vc = _meta(version_compatible=True)
    assert compatibility_problems(vc, "10.9.0.34", (8, 6)) == []
    assert compatibility_problems(vc, "10.7.0", (8, 6)) and compatibility_problems(vc, "11.0.0", (8, 6))
    amp = _meta(hardware_compatibility="ampere_plus")
    assert compatibility_problems(amp, "10.8.0.43", (9, 0)) == []
    assert "Ampere" in compatibility_problems(amp, "10.8.0.43", (7, 5))[0]


def test_engine_stem() -> None:
    assert engine_stem(None) == "engine" and engine_stem("2") == "tier-2" and engine_stem("a/b") == "tier-a-b"


def test_a_fixed_batch_graph_gets_that_batch_in_every_profile_shape() -> None:
    section = TensorRTSection(min_shape=(1, 16, 16), opt_shape=(2, 64, 64), max_shape=(4, 128, 128))
    cfg = EngineConfig.from_recipe(section, plan_has_2of4=False, size_multiple=8, fixed_batch=1)
    assert (cfg.profile.min, cfg.profile.opt, cfg.profile.max) == ((1, 3, 16, 16), (1, 3, 64, 64), (1, 3, 128, 128))
    assert EngineConfig.from_recipe(section, plan_has_2of4=False).profile.max == (4, 3, 128, 128)
