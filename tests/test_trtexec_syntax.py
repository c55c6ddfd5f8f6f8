"""trtexec spellings in the tensorrt section (input:1x3x64x64 shapes, minShapes/optShapes/maxShapes,
memPoolSize, hardwareCompatibilityLevel, versionCompatible) reach the engine configuration; bad
syntax is one line. No TensorRT needed: EngineConfig is plain data."""

from __future__ import annotations

from pathlib import Path

import pytest
from clitest import assert_one_error, run_cli

from srdeploy.backends.trt_config import EngineConfig
from srdeploy.errors import RecipeError
from srdeploy.recipe import recipe_from_dict
from srdeploy.trtexec_syntax import INPUT_NAME, parse_mem_pool, parse_shape


def _trt(**section: object):
    return recipe_from_dict({"name": "t", "model": {"path": "m.pt"}, "tensorrt": section}).tensorrt


def test_the_input_name_is_the_exported_one() -> None:
    from srdeploy.export import INPUT_NAME as EXPORTED

    assert INPUT_NAME == EXPORTED


@pytest.mark.parametrize(
    ("text", "nhw"),
    [("input:1x3x64x48", (1, 64, 48)), ("4x3x720x1280", (4, 720, 1280)), (" input:2x3x8x8 ", (2, 8, 8))],
)
def test_shapes(text: str, nhw: tuple[int, int, int]) -> None:
    assert parse_shape(text) == nhw


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x:1x3x64x64", "input is called 'input'"),
        ("input:1x3x64", "3 dimensions"),
        ("input:1x1x64x64", "C must be 3"),
        ("input:1*3*64*64", "not a trtexec shape"),
        ("input:", "not a trtexec shape"),
    ],
)
def test_bad_shapes(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_shape(text)


@pytest.mark.parametrize(
    ("text", "mib"), [("workspace:4096", 4096), ("workspace:2G", 2048), ("workspace:512M", 512), ("workspace:2048K", 2)]
)
def test_memory_pools(text: str, mib: int) -> None:
    assert parse_mem_pool(text) == mib


@pytest.mark.parametrize(
    ("text", "message"),
    [("dlaSRAM:1M", "only workspace"), ("workspace:4T", "not a trtexec memory pool"), ("workspace:1K", "whole")],
)
def test_bad_memory_pools(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_mem_pool(text)


def test_trtexec_keys_reach_the_engine_config() -> None:
    section = _trt(
        minShapes="input:1x3x16x16",
        optShapes="input:1x3x128x96",
        maxShapes="input:2x3x256x256",
        memPoolSize="workspace:1G",
        hardwareCompatibilityLevel="ampere+",
        versionCompatible=True,
    )
    cfg = EngineConfig.from_recipe(section, plan_has_2of4=False)
    assert cfg.profile.as_dict() == dict(min=[1, 3, 16, 16], opt=[1, 3, 128, 96], max=[2, 3, 256, 256])
    assert cfg.workspace_bytes == 1 << 30
    assert cfg.hardware_compatibility == "ampere_plus" and cfg.version_compatible
    assert _trt(hardware_compatibility="sameComputeCapability").hardware_compatibility == "same_compute_capability"


def test_resolved_recipe_keeps_its_own_spelling() -> None:
    d = recipe_from_dict({"name": "t", "model": {"path": "m.pt"}, "tensorrt": {"minShapes": "input:1x3x8x8"}}).to_dict()
    assert d["tensorrt"]["min_shape"] == [1, 8, 8] and "minShapes" not in d["tensorrt"]


def test_both_spellings_and_disordered_shapes_are_refused() -> None:
    with pytest.raises(RecipeError, match="both minShapes and min_shape"):
        _trt(minShapes="input:1x3x8x8", min_shape=[1, 8, 8])
    with pytest.raises(RecipeError, match="min_shape 64 <= opt_shape 32"):
        _trt(min_shape="input:1x3x64x64", opt_shape="input:1x3x32x32")


def test_cli_shape_options(ws: Path) -> None:
    res = run_cli("build", "-r", "recipe.yaml", "--minShapes", "input:1x3x8", cwd=ws)
    assert_one_error(res, 2, "tensorrt.min_shape", "3 dimensions", "input:1x3x64x64")
    assert not (ws / "builds").exists()
