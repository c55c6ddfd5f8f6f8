"""quant.float_budget: the most sensitive convs per MAC stay float, within the budget, and the emitted graph
quantizes exactly the remaining convs."""

from __future__ import annotations

import pytest
from srtest import context, exported, recipe, tiny_edsr

from srdeploy.pipeline import PLAN_STEPS
from srdeploy.stages.context import initial_plan
from srdeploy.stages.emit import emit_graph, emit_inputs
from srdeploy.stages.precision import precision_step

QUANT = dict(weight_bits=8, act_bits=4, method="minmax", quantize_roles=["body", "upsampler", "tail"])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    model = tiny_edsr(blocks=2, feats=16)
    return model, *exported(model, tmp_path_factory.mktemp("precision"))


def _plan(tiny, **quant):
    model, proto, graph = tiny
    ctx = context(model, proto, graph, recipe({**QUANT, **quant}))
    plan = initial_plan(ctx)
    for step in PLAN_STEPS:
        plan = step(ctx, plan)
    return ctx, plan


def test_budget_zero_changes_nothing(tiny) -> None:
    ctx, plan = _plan(tiny)
    assert precision_step(ctx, plan) is plan and "sensitivity" not in ctx.reports


def test_float_layers_within_budget_and_emitted_float(tiny) -> None:
    model, proto, _ = tiny
    base_ctx, base = _plan(tiny)
    ctx, plan = _plan(tiny, float_budget=0.3, float_min_gain_db=0.0)
    chosen = ctx.reports["sensitivity"]["kept_float"]
    assert chosen, "a 4-bit activation model must have a layer worth keeping float"
    macs = {x.weight: x.macs_per_lr_pixel for x in base.quantized_layers()}
    assert sum(macs[w] for w in chosen) <= 0.3 * sum(macs.values()) + 1e-9
    floats = {x.weight for x in plan.layers if not x.quantized}
    assert set(chosen) <= floats and all("float_budget" in plan.layer(w).reason for w in chosen)
    assert not set(chosen) & set(plan.weights)
    emitted, _ = emit_graph(emit_inputs(model, plan, proto, 19), plan, "trt", plan.default_tier)
    dq_outputs = {n.output[0] for n in emitted.graph.node if n.op_type == "DequantizeLinear"}
    convs = [n for n in emitted.graph.node if n.op_type == "Conv"]
    assert sum(n.input[1] in dq_outputs for n in convs) == len(plan.quantized_layers())
    assert len(plan.quantized_layers()) == len(base.quantized_layers()) - len(chosen)
    assert base_ctx.reports.get("sensitivity") is None
