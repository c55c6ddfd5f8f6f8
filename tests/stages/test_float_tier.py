"""The float tier (quant.float_tier): the threshold rule, the selector it joins, and a plan whose float tier
is emitted without any Q/DQ, simulates as the float model, round-trips through plan.json and counts 32 bits."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnxruntime as ort
import pytest
import torch
from srtest import context, exported, recipe, tiny_edsr

from srdeploy.calib.float_tier import candidates, choose_threshold
from srdeploy.pipeline import PLAN_STEPS
from srdeploy.quant.plan import BitMap
from srdeploy.quant.plan_io import plan_from_json, plan_to_json
from srdeploy.quant.simulate import simulate
from srdeploy.stages.context import initial_plan
from srdeploy.stages.emit import emit_graph, emit_inputs
from srdeploy.validate import cost

QUANT = dict(weight_bits=8, act_bits=4, method="minmax", quantize_roles=["body", "upsampler", "tail"])
QDQ = {"QuantizeLinear", "DequantizeLinear"}


def test_threshold_sits_above_the_flat_patches_that_lose() -> None:
    c = np.arange(100, dtype=float)  # complexity 0..99
    d = np.where(c < 8, 1.0, 0.0)  # the 8 flattest patches lose 1 dB, the rest nothing
    idx = candidates(c, 0.1)
    choice = choose_threshold(c[idx], d[idx], 100, max_drop_db=0.3, max_share=0.1)
    assert choice.threshold is not None and 6 < choice.threshold < 9
    assert np.all(d[c < choice.threshold] == 1.0) or choice.share <= 0.1


def test_no_threshold_when_nothing_loses_and_the_share_is_capped() -> None:
    c = np.arange(100, dtype=float)
    assert choose_threshold(c, np.zeros(100), 100, 0.1, 0.1).threshold is None
    everything = choose_threshold(c, np.ones(100), 100, 0.1, 0.05)
    assert everything.threshold is not None and everything.share <= 0.05
    assert np.sum(c < everything.threshold) <= 5


def test_selector_puts_the_float_tier_below_every_bit_tier() -> None:
    bits = BitMap(tier_offsets=(-1, 0, 1), thresholds=(3.0, 10.0), float_below=5.0)
    sel = bits.selector()
    assert bits.float_tier == 3 and sel is not None
    assert sel.thresholds == (5.0, 10.0) and sel.tiers == (3, 1, 2)
    assert [sel.route(v) for v in (1.0, 4.9, 5.0, 9.0, 10.0)] == [3, 3, 1, 1, 2]
    single = BitMap(float_below=2.0).selector()
    assert single is not None and single.tiers == (1, 0) and single.route(1.0) == 1 and single.route(2.0) == 0
    assert BitMap().selector() is None


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    model = tiny_edsr(blocks=2, feats=16)
    proto, graph = exported(model, tmp_path_factory.mktemp("float_tier"))
    r = recipe(
        {**QUANT, "float_tier": {"max_drop_db": 1e-6, "max_share": 0.25, "patches": 32}}, calib={"patch_size": 16}
    )
    ctx = context(model, proto, graph, r)
    plan = initial_plan(ctx)
    for step in PLAN_STEPS:
        plan = step(ctx, plan)
    return model, proto, ctx, plan


def test_plan_gets_a_float_tier_within_the_share(tiny) -> None:
    _, _, ctx, plan = tiny
    report = ctx.reports["float_tier"]
    assert report["threshold"] is not None and 0 < report["share_below"] <= 0.25
    assert plan.bits.float_below == pytest.approx(report["threshold"], abs=1e-4)
    floats = [t for t in plan.tiers if not t.quantized]
    assert [t.index for t in floats] == [plan.bits.float_tier] and floats[0].name == "float"
    assert plan.selector is not None and plan.selector.tiers[0] == plan.bits.float_tier
    assert cost.fab(plan, {plan.bits.float_tier: 1.0}) == 32.0
    assert cost.fab(plan, {plan.default_tier: 1.0}) < 32.0
    assert cost.bitops(plan, {plan.bits.float_tier: 1.0}) > 2 * cost.bitops(plan, {plan.default_tier: 1.0})


def test_float_tier_graph_has_no_qdq_and_computes_the_float_model(tiny) -> None:
    model, proto, _, plan = tiny
    inputs = emit_inputs(model, plan, proto, 19)
    float_graph, _ = emit_graph(inputs, plan, "ort", plan.bits.float_tier)
    base_graph, _ = emit_graph(inputs, plan, "ort", plan.default_tier)
    assert not {n.op_type for n in float_graph.graph.node} & QDQ
    assert {n.op_type for n in base_graph.graph.node} & QDQ
    x = np.random.default_rng(3).random((1, 3, 12, 12), dtype=np.float32)
    sess = ort.InferenceSession(float_graph.SerializeToString(), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        ref = model.module(torch.from_numpy(x)).numpy()
        sim = simulate(model, plan, "ort", plan.bits.float_tier)(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(out - ref)) < 1e-4 and np.max(np.abs(sim - ref)) < 1e-5


def test_float_tier_round_trips_and_a_broken_one_is_refused(tiny) -> None:
    _, _, _, plan = tiny
    doc, arrays = plan_to_json(plan)
    again = plan_from_json(doc, arrays)
    assert again.bits.float_below == plan.bits.float_below
    assert [t.quantized for t in again.tiers] == [t.quantized for t in plan.tiers]
    from srdeploy.errors import PlanError

    broken = plan_to_json(replace(plan, tiers=plan.tiers[:-1]))
    with pytest.raises(PlanError, match="float tier does not match"):
        plan_from_json(*broken)


def test_folder_holds_the_float_graph_and_the_runtime_routes_flat_input_to_it(tiny, tmp_path) -> None:
    import json

    from srdeploy.buildfolder import BuildFolder
    from srdeploy.runtime.routing import make_router
    from srdeploy.stages.emit import emit_all
    from srdeploy.stages.outputs import write_tiers_json

    model, proto, _, plan = tiny
    folder = BuildFolder(tmp_path)
    emit_all(emit_inputs(model, plan, proto, 19), plan, folder)
    write_tiers_json(folder, plan)
    f = plan.bits.float_tier
    assert folder.profile_models("ort") == {0: tmp_path / "ort" / "model.onnx", f: tmp_path / "ort" / "float.onnx"}
    doc = json.loads(folder.tiers_json.read_text())
    files = {t["index"]: t["files"]["ort"] for t in doc["tiers"]}
    assert files == {0: "ort/model.onnx", f: "ort/float.onnx"}
    route = make_router(doc["selector"], doc["default_tier"], set(files))
    flat = np.full((3, 24, 24), 0.4, dtype=np.float32)
    busy = np.random.default_rng(0).random((3, 24, 24), dtype=np.float32)
    assert route(flat) == f and route(busy) == 0


def test_float_tier_without_hr_is_refused_even_past_the_recipe_check(tiny) -> None:
    from srdeploy.errors import PlanError
    from srdeploy.stages.float_tier import float_tier_step

    _, _, ctx, plan = tiny
    r = ctx.recipe  # model_copy skips the recipe validator that refuses this combination
    lr_only = r.model_copy(update=dict(calib=r.calib.model_copy(update=dict(degradation="none"))))
    with pytest.raises(PlanError, match="needs HR images"):
        float_tier_step(replace(ctx, recipe=lr_only), plan)
