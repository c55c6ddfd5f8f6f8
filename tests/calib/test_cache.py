"""Calibration cache: export a plan's ranges, import them into a new build (same ranges, same grids, no
observation), and one-line errors for caches of another model, other bits, or malformed values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from srtest import context, recipe

from srdeploy.calib.cache import cache_options, read_cache, write_cache
from srdeploy.errors import RecipeError
from srdeploy.pipeline import PLAN_STEPS
from srdeploy.stages.context import initial_plan

QUANT = dict(weight_bits=8, act_bits=6, method="mse")


def _plan(tiny_model, tiny_export, quant=QUANT, cache=None, observe_fails=False):
    ctx = context(tiny_model, *tiny_export, recipe(quant))
    ctx.calibration_cache = cache
    if observe_fails:  # an imported cache must not need a single calibration patch
        ctx.patches = ctx.patches[:0]
    plan = initial_plan(ctx)
    for step in PLAN_STEPS:
        plan = step(ctx, plan)
    return plan, ctx


@pytest.fixture(scope="module")
def exported_cache(tiny_model, tiny_export, tmp_path_factory) -> tuple[object, Path]:
    plan, _ = _plan(tiny_model, tiny_export)
    path = tmp_path_factory.mktemp("cache") / "calib.json"
    write_cache(path, plan)
    return plan, path


def test_round_trip_gives_the_same_ranges_and_grids(tiny_model, tiny_export, exported_cache) -> None:
    first, path = exported_cache
    again, ctx = _plan(tiny_model, tiny_export, cache=read_cache(path), observe_fails=True)
    assert again.ranges == first.ranges and again.bits == first.bits
    for a, b in zip(first.tiers, again.tiers, strict=True):
        for p in a.activations:
            for s, spec in a.activations[p].items():
                other = b.activations[p][s]
                assert (spec.bits, float(spec.scale), int(spec.zero_point)) == (
                    other.bits,
                    float(other.scale),
                    int(other.zero_point),
                )
    assert ctx.reports["calibration_cache"]["imported"] == str(path)
    doc = json.loads(path.read_text())
    site, spec = next(iter(doc["default_tier_scales"]["trt"].items()))
    assert spec["scale"] == pytest.approx(float(first.tiers[0].activations["trt"][site].scale))


def test_other_bits_are_refused(tiny_model, tiny_export, exported_cache) -> None:
    _, path = exported_cache
    with pytest.raises(RecipeError, match="this recipe asks for") as info:
        _plan(tiny_model, tiny_export, quant={**QUANT, "act_bits": 8}, cache=read_cache(path))
    assert "\n" not in str(info.value)


def test_other_layer_names_are_refused(tiny_model, tiny_export, exported_cache, tmp_path) -> None:
    _, path = exported_cache
    doc = json.loads(path.read_text())
    for profile in doc["ranges"].values():
        name = sorted(profile)[0]
        profile["renamed." + name] = profile.pop(name)
    bad = tmp_path / "renamed.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(RecipeError, match="layer names do not match this build") as info:
        _plan(tiny_model, tiny_export, cache=read_cache(bad))
    assert "missing" in str(info.value) and "unknown renamed." in str(info.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(format="other"), "not an srdeploy calibration cache"),
        (lambda d: d.update(version=99), "cache version 99"),
        (lambda d: next(iter(d["ranges"]["trt"].values())).update(hi=float("nan")), "finite"),
        (lambda d: next(iter(d["ranges"]["trt"].values())).update(lo=5.0, hi=1.0), "is empty"),
        (lambda d: d["bits"].update(base=12), "2..8"),
        (lambda d: d.pop("bits"), "bits are malformed"),
    ],
)
def test_malformed_caches(exported_cache, tmp_path, edit, message: str) -> None:
    _, path = exported_cache
    doc = json.loads(path.read_text())
    edit(doc)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(RecipeError, match=message):
        read_cache(bad)


def test_cache_options(exported_cache, tmp_path) -> None:
    _, path = exported_cache
    assert cache_options(path, None)[0] is not None and cache_options(path, None)[1] is None  # exists: import
    assert cache_options(tmp_path / "new.json", None) == (None, tmp_path / "new.json")  # absent: export
    with pytest.raises(RecipeError, match="not found"):
        cache_options(None, tmp_path / "absent.json")
    with pytest.raises(RecipeError, match="both given"):
        cache_options(path, path)
    with pytest.raises(RecipeError, match="is a folder"):
        cache_options(tmp_path, None)
    with pytest.raises(RecipeError, match="does not exist"):
        cache_options(tmp_path / "no" / "c.json", None)
    (tmp_path / "garbage.json").write_bytes(b"\xff\xfe")
    with pytest.raises(RecipeError, match="not readable JSON"):
        cache_options(tmp_path / "garbage.json", None)


def test_a_float_budget_cannot_use_a_cache(exported_cache) -> None:
    from srdeploy.pipeline import build

    with pytest.raises(RecipeError, match="float_budget"):
        build(recipe({"float_budget": 0.1}), "never_written", calibration_cache=read_cache(exported_cache[1]))
    assert not Path("never_written").exists()


def test_a_float_residual_tier_survives_the_cache(tiny_model, tiny_export, tmp_path) -> None:
    adaptive = {"enabled": True, "image_order": "flat_high", "image_percentiles": [30, 100]}
    quant = dict(weight_bits=4, act_bits=4, method="adabm", adaptive={**adaptive, "high_tier_float_residuals": True})
    plan, _ = _plan(tiny_model, tiny_export, quant=quant)
    assert plan.bits.float_residual_tiers == (0,) and any(r.residual for r in plan.ranges["trt"].values())
    write_cache(tmp_path / "calib.json", plan)
    cache = read_cache(tmp_path / "calib.json")
    assert cache.bits == plan.bits and cache.ranges == plan.ranges
    again, _ = _plan(tiny_model, tiny_export, quant=quant, cache=cache)  # (equalization observes patches)
    assert again.tier(0).sites("trt").keys() == plan.tier(0).sites("trt").keys()
    assert again.tier(0).sites("trt").keys() < again.tier(1).sites("trt").keys()  # the skips: base tier only
