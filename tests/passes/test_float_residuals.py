"""quant.adaptive.high_tier_float_residuals: the tiers above the base leave the residual stream float (no Q/DQ on
residual-Add skips nor on the conv outputs that are residual branches); the base tier keeps its grids. The
emitted graphs compute what the simulation of their tier does, and the plan keeps the choice on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from srtest import context, exported, ort_fused, params, patches, recipe, simulated, tiny_edsr

from srdeploy.errors import RecipeError
from srdeploy.passes.rewrite import rewrite
from srdeploy.pipeline import PLAN_STEPS
from srdeploy.quant import sites
from srdeploy.quant.plan_io import load_plan, save_plan
from srdeploy.stages.context import initial_plan

ADAPTIVE = {"enabled": True, "image_order": "flat_high", "image_percentiles": [30, 100]}
QUANT = dict(weight_bits=4, act_bits=4, method="adabm", adaptive={**ADAPTIVE, "high_tier_float_residuals": True})


def _data() -> np.ndarray:
    smooth = np.linspace(0.2, 0.3, 16, dtype=np.float32)
    flat = np.broadcast_to(smooth[None, None, :], (4, 3, 16, 16)).copy()
    return np.concatenate([patches(8, 16), flat])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    model = tiny_edsr(blocks=2, feats=8)
    fp32, graph = exported(model, tmp_path_factory.mktemp("float_residuals"))
    ctx = context(model, fp32, graph, recipe(QUANT, export={"profiles": ["ort", "trt"]}))
    ctx.patches = _data()
    plan = initial_plan(ctx)
    for step in PLAN_STEPS:
        plan = step(ctx, plan)
    return model, fp32, plan


def _residual_adds(graph: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in graph.graph.node if n.op_type == "Add" and n.name.endswith(".add:Add")]


@pytest.mark.parametrize("profile", ["ort", "trt"])
def test_the_flat_tier_has_a_float_residual_stream_and_the_base_tier_does_not(built, profile: str) -> None:
    model, fp32, plan = built
    assert plan.bits.tier_offsets == (1, 0) and plan.bits.float_residual_tiers == (0,)
    producers = {}
    for tier in (0, 1):
        graph = rewrite(fp32, plan, profile, tier, params(model, plan))[0]
        of = {o: n.op_type for n in graph.graph.node for o in n.output}
        producers[tier] = [(of.get(a.input[0]), of.get(a.input[1])) for a in _residual_adds(graph)]
        assert producers[tier], "no residual Add found: the test would prove nothing"
    assert all("DequantizeLinear" not in p for p in producers[0]), producers[0]
    assert all(skip == "DequantizeLinear" for _, skip in producers[1]), producers[1]
    # the body conv inputs stay quantized at the tier's bits in both
    body_in = {sites.site(x.weight, sites.INPUT) for x in plan.quantized_layers() if x.role == "body"}
    assert body_in <= set(plan.tier(0).sites(profile)) and body_in <= set(plan.tier(1).sites(profile))


@pytest.mark.parametrize("profile", ["ort", "trt"])
def test_each_tier_graph_computes_its_simulation(built, profile: str) -> None:
    model, fp32, plan = built
    x = np.random.default_rng(2).random((1, 3, 12, 15)).astype(np.float32)
    for tier in (0, 1):
        graph = rewrite(fp32, plan, profile, tier, params(model, plan), fp16=False)[0]
        got, want = ort_fused(graph, x), simulated(model, plan, profile, tier, x)
        psnr = 10 * np.log10(1.0 / float(np.mean((got - want) ** 2)))
        assert psnr > 40, (tier, psnr)


def test_the_plan_keeps_the_float_residual_tiers(built, tmp_path: Path) -> None:
    _, _, plan = built
    save_plan(plan, tmp_path / "plan.json")
    back = load_plan(tmp_path / "plan.json")
    assert back.bits.float_residual_tiers == (0,)
    assert {s for s, r in back.ranges["ort"].items() if r.residual} == {
        s for s, r in plan.ranges["ort"].items() if r.residual
    }
    assert back.tier(0).sites("ort").keys() == plan.tier(0).sites("ort").keys()


def test_float_residuals_without_image_tiers_is_refused() -> None:
    with pytest.raises(RecipeError, match="image_bits"):
        recipe(dict(QUANT, adaptive={"enabled": True, "image_bits": False, "high_tier_float_residuals": True}))
