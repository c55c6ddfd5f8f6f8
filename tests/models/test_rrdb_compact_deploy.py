"""RRDBNet and Compact deployed as built: the fused ONNX Runtime graph computes what the simulation says
(>= 40 dB) with every conv quantized, through RRDB's dense concatenations and 0.2-scaled residuals and
Compact's first layer with |w| ~ 35 (as released checkpoints have) and its nearest-upsampled input residual."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from srtest import exported, ort_fused, params, patches, plan_for, recipe, simulated

from srdeploy.models.base import SRModel
from srdeploy.models.compact import SRVGGNetCompact
from srdeploy.models.deploy_form import to_deploy_form
from srdeploy.models.rrdbnet import RRDBNet
from srdeploy.passes.rewrite import rewrite
from srdeploy.validate.metrics import psnr_float

X = np.ascontiguousarray(patches(1, 20, seed=5)[:, :, :, :17])  # an odd width






ALL_ROLES = dict(weight_bits=8, act_bits=8, method="mse", quantize_roles=["head", "body", "upsampler", "tail"])


def init_like_training(net: torch.nn.Module, gain: float) -> None:
    """Weights N(0, gain^2 / fan_in), biases N(0, 0.01): activations neither explode nor vanish."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * gain / math.sqrt(fan_in))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.01)


def compact_with_large_first_layer(k: float = 40.0) -> SRVGGNetCompact:
    """PReLU is positively homogeneous: first conv x k, second conv / k computes the same function, with
    first-layer weights and biases k times larger (released Compact files reach |w| ~ 35)."""
    net = SRVGGNetCompact(scale=4, num_feat=16, num_conv=4)
    init_like_training(net, 1.0)
    with torch.no_grad():
        net.body[0].weight.mul_(k)
        net.body[0].bias.mul_(k)
        net.body[2].weight.div_(k)
    return net


def rrdbnet() -> RRDBNet:
    net = RRDBNet(scale=4, num_feat=16, num_block=2, num_grow_ch=8)
    init_like_training(net, 0.1 * math.sqrt(2))  # BasicSR's RRDB init: kaiming x 0.1
    return net


def compact_with_a_dead_channel() -> SRVGGNetCompact:
    """An output channel without weights but with a bias (dead filters of trained PReLU networks): its
    weight scale must not be so small that the bias overflows the int32 grid input x weight scale."""
    net = compact_with_large_first_layer()
    with torch.no_grad():
        net.body[4].weight[3].zero_()
        net.body[4].bias[3] = 1.0
    return net


NETWORKS = {"rrdbnet": rrdbnet, "compact": compact_with_large_first_layer, "compact_dead": compact_with_a_dead_channel}


@pytest.mark.parametrize("arch", sorted(NETWORKS))
def test_deployed_graph_agrees_with_the_simulation(arch: str, tmp_path) -> None:
    net = NETWORKS[arch]().eval()
    if arch.startswith("compact"):
        assert net.body[0].weight.abs().max() > 25  # the premise: released-checkpoint-sized first layer
    model = to_deploy_form(SRModel(module=net, arch=net.arch, scale=net.scale, hparams=net.hparams))
    fp32, graph = exported(model, tmp_path)
    plan = plan_for(model, fp32, graph, recipe(ALL_ROLES))
    assert all(x.quantized for x in plan.layers)
    if arch == "compact_dead":
        spec, bias = plan.weights["body.4.weight"], model.module.body[4].bias[3].item()
        input_scale = min(r["body.4.weight@input"].hi - r["body.4.weight@input"].lo for r in plan.ranges.values()) / 255
        assert abs(bias) / (input_scale * float(spec.scale.ravel()[3])) < 2**31  # int32-representable
    with torch.no_grad():
        ref = model.module(torch.from_numpy(X)).numpy()
    w = params(model, plan)
    for profile in ("ort", "trt"):
        got = fused(rewrite(fp32, plan, profile, 0, w, fp16=False)[0])
        simulated = sim(model, plan, profile, 0)
        assert psnr_float(got, simulated) >= 40.0, (arch, profile, psnr_float(got, simulated))
        assert psnr_float(simulated, ref) >= 30.0, (arch, profile)  # W8A8 stays close to fp32
        assert np.isfinite(got).all()


def fused(proto) -> np.ndarray:
    return ort_fused(proto, X)


def sim(model, plan, profile: str, tier: int) -> np.ndarray:
    return simulated(model, plan, profile, tier, X)
