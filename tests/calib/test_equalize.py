from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from srtest import exported, make_plan, params, patches, tiny_edsr

from srdeploy.calib.equalize import equalization_groups, find_groups
from srdeploy.calib.observers import observe
from srdeploy.passes.rewrite import rewrite
from srdeploy.quant import sites
from srdeploy.quant.apply import apply_plan
from srdeploy.quant.plan import ModelRef, QuantPlan


def test_groups_of_edsr(tmp_path: Path) -> None:
    model = tiny_edsr(blocks=2)
    proto, _ = exported(model, tmp_path)
    groups, _ = find_groups(proto)
    by_consumers = {g.consumers: g for g in groups}
    # conv1 -> ReLU -> conv2 of each block
    assert ("body.0.body.2.weight",) in by_consumers
    # the residual stream: head + every conv2 + body conv produce; conv1s, body conv, upsampler consume
    stream = next(g for g in groups if "head.0.weight" in g.producers)
    assert set(stream.consumers) == {"body.0.body.0.weight", "body.1.body.0.weight", "body.2.weight", "tail.0.0.weight"}
    assert set(stream.producers) == {"head.0.weight", "body.0.body.2.weight", "body.1.body.2.weight", "body.2.weight"}


QUANTIZED = {"body.0.body.0.weight", "body.0.body.2.weight", "body.1.body.0.weight", "body.1.body.2.weight"}


def test_equalization_keeps_the_function_evens_ranges_and_leaves_the_model_alone(tmp_path: Path) -> None:
    model = tiny_edsr(blocks=2, feats=8)
    with torch.no_grad():  # make channel ranges very uneven
        model.module.body[0].body[0].weight[:4].mul_(20.0)
    proto, _ = exported(model, tmp_path)
    trained = {k: v.clone() for k, v in model.module.state_dict().items()}
    x = torch.from_numpy(patches(4, 16, seed=9))
    names = [sites.site(w, sites.INPUT) for w in QUANTIZED | {"body.2.weight"}]
    stats = observe(model.module, names, patches(8))
    groups, report = equalization_groups(proto, stats, QUANTIZED | {"body.2.weight"}, {w: 8 for w in QUANTIZED})
    assert len(report["groups"]) >= 3 and len(groups) == len(report["groups"])
    plan = QuantPlan(model=ModelRef("edsr", "tiny", 2), layers=(), equalization=groups)
    equalized = apply_plan(model.module, plan)
    with torch.no_grad():
        torch.testing.assert_close(equalized(x), model.module(x), atol=1e-4, rtol=1e-4)
    site = sites.site("body.0.body.2.weight", sites.INPUT)
    stats2 = observe(equalized, names, patches(8))
    spread = [float(s[site].ch_max.max() / max(np.median(s[site].ch_max), 1e-9)) for s in (stats, stats2)]
    assert spread[1] < spread[0] / 3
    # the model as trained is untouched: equalization lives in the plan only
    for k, v in model.module.state_dict().items():
        torch.testing.assert_close(v, trained[k], rtol=0, atol=0)


def test_daq_plan_emits_equalized_weights_while_fp32_onnx_stays_as_trained(tmp_path: Path) -> None:
    model = tiny_edsr(blocks=2, feats=8)
    proto, graph = exported(model, tmp_path)
    before = proto.SerializeToString()
    plan = make_plan(model, (proto, graph), weight_bits=4, act_bits=4, method="daq")
    assert plan.equalization, "method daq equalizes by default"
    assert proto.SerializeToString() == before
    deployed = params(model, plan)
    q, _ = rewrite(proto, plan, "ort", 0, deployed)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in q.graph.initializer}
    head = "head.0.weight"  # a float conv whose output rows are rescaled
    np.testing.assert_array_equal(inits[head], deployed[head])
    assert not np.array_equal(deployed[head], model.module.get_parameter(head).detach().numpy())
