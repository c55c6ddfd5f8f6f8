"""Emission from the plan: every plan field reaches the graph, and the fused ONNX Runtime execution agrees
with the simulation for the default recipe's settings, adaptive tiers, re-fitted masks and equalization."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from srtest import exported, ort_fused, params, plan_for, recipe, simulated, tiny_edsr

from srdeploy.passes.rewrite import rewrite
from srdeploy.quant.plan import ChannelGroup, Emission, NMMask
from srdeploy.validate.metrics import psnr_float

DEFAULT = dict(weight_bits=8, act_bits=8, method="mse", quantize_roles=["body", "upsampler", "tail"])
X = np.random.default_rng(5).random((1, 3, 20, 24)).astype(np.float32)
X = (0.5 * X + 0.25 * np.roll(X, 1, 2) + 0.25 * np.roll(X, 1, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    model = tiny_edsr(blocks=2, feats=16)
    return model, *exported(model, tmp_path_factory.mktemp("emit"))


CASES = {
    "default recipe": (DEFAULT, {}),
    "adaptive W4A4 tiers": (dict(weight_bits=4, act_bits=4, method="adabm", adaptive={"enabled": True}), {}),
    "2:4 masks with re-fit": (DEFAULT, {"sparsity": {"policy": "uniform", "refit": True}}),
    "DAQ equalization": (dict(weight_bits=8, act_bits=6, method="daq"), {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_onnx_runtime_agrees_with_the_simulation(tiny, case: str) -> None:
    """Integer kernels round requantization once per conv where the simulation rounds a float conv: the two
    may differ by a level here and there, never by more than that."""
    model, fp32, graph = tiny
    quant, sections = CASES[case]
    plan = plan_for(model, fp32, graph, recipe(quant, **sections))
    if "masks" in case:
        assert any(m.weight is not None for m in plan.masks.values())
    if "equalization" in case:
        assert plan.equalization
    w = params(model, plan)
    for profile in ("ort", "trt"):
        for tier in plan.tiers:
            got = fused(rewrite(fp32, plan, profile, tier.index, w, fp16=False)[0])
            agreement = psnr_float(got, sim(model, plan, profile, tier.index))
            assert agreement > 40.0, (case, profile, tier.index, agreement)


def _changed(model, fp32, plan, edited, profile: str = "ort") -> bool:
    a = rewrite(fp32, plan, profile, 0, params(model, plan))[0].SerializeToString()
    b = rewrite(fp32, edited, profile, 0, params(model, edited))[0].SerializeToString()
    return a != b


def test_every_plan_field_reaches_the_graph(tiny) -> None:
    model, fp32, graph = tiny
    plan = plan_for(model, fp32, graph, recipe(DEFAULT))
    w0 = next(iter(sorted(plan.weights)))
    spec = plan.weights[w0]
    t = plan.tier(0)
    site = sorted(t.activations["ort"])[0]
    act = t.activations["ort"][site]
    keep = np.ones(model.module.get_parameter(w0).shape, bool)
    keep[:, ::2] = False
    group = ChannelGroup((w0,), (), np.full(spec.scale.shape, 2.0, np.float32))
    edits = {
        "weight scale": replace(plan, weights={**plan.weights, w0: replace(spec, scale=spec.scale * 2)}),
        "activation scale": replace(
            plan,
            tiers=(
                replace(
                    t,
                    activations={
                        **t.activations,
                        "ort": {**t.activations["ort"], site: replace(act, scale=act.scale * 2)},
                    },
                ),
            ),
        ),
        "mask": replace(plan, masks={w0: NMMask(2, 4, keep)}),
        "mask bias": replace(
            plan, masks={w0: NMMask(4, 4, np.ones_like(keep), bias=np.ones(keep.shape[0], np.float32))}
        ),
        "equalization": replace(plan, equalization=(group,)),
        "opset": replace(plan, emission={**plan.emission, "ort": Emission(opset=21)}),
    }
    for name, edited in edits.items():
        assert _changed(model, fp32, plan, edited), name
    fp16 = replace(plan, emission={**plan.emission, "trt": Emission(opset=19, float_dtype="float32")})
    assert _changed(model, fp32, plan, fp16, "trt")


def fused(proto) -> np.ndarray:
    return ort_fused(proto, X)


def sim(model, plan, profile: str, tier: int) -> np.ndarray:
    return simulated(model, plan, profile, tier, X)
