"""Test helpers: tiny seeded models, patches, exports and plans (no downloads, seconds to make)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch

from srdeploy.calib.exclude import apply_exclusions
from srdeploy.calib.layers import layer_infos
from srdeploy.export import export_onnx, residual_add_paths
from srdeploy.models.base import SRModel
from srdeploy.models.edsr import EDSR
from srdeploy.passes.graph_info import GraphInfo, analyze
from srdeploy.pipeline import PLAN_STEPS
from srdeploy.quant.apply import deployed_weights
from srdeploy.quant.plan import QuantPlan
from srdeploy.recipe import Recipe, recipe_from_dict
from srdeploy.stages.context import BuildContext, initial_plan

REPO = Path(__file__).resolve().parents[1]


def tiny_edsr(scale: int = 2, blocks: int = 2, feats: int = 8, seed: int = 0) -> SRModel:
    torch.manual_seed(seed)
    net = EDSR(scale=scale, n_resblocks=blocks, n_feats=feats)
    # A trained EDSR's residual branches are small; random init makes activations explode.
    with torch.no_grad():
        for block in net.body[:-1]:
            block.body[2].weight.mul_(0.2)
    net.fuse_for_deploy()
    net.eval()
    return SRModel(module=net, arch="edsr", scale=scale, hparams=net.hparams, name="tiny_edsr")


def patches(n: int = 8, size: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.random((n, 3, size, size)).astype(np.float32)
    # Smooth, image-like content: average neighbouring pixels.
    return (0.5 * base + 0.25 * np.roll(base, 1, 2) + 0.25 * np.roll(base, 1, 3)).astype(np.float32)


def exported(model: SRModel, tmp: Path) -> tuple[onnx.ModelProto, GraphInfo]:
    path = export_onnx(model, tmp / "fp32.onnx")
    proto = onnx.load(str(path))
    return proto, analyze(proto, residual_add_paths(model.module))


def recipe(quant: dict | None = None, **sections: object) -> Recipe:
    """A recipe for in-memory models (its model section is never loaded)."""
    return recipe_from_dict({"name": "test", "model": {"path": "unused.pt"}, "quant": dict(quant or {}), **sections})


def context(
    model: SRModel, proto: onnx.ModelProto, graph: GraphInfo, r: Recipe, n: int = 8, size: int = 16
) -> BuildContext:
    layers = apply_exclusions(layer_infos(model, list(graph.convs), r.quant.quantize_roles), r.quant.exclude, graph)
    return BuildContext(r, model, model, proto, graph, layers, patches(n, size))


def plan_for(model: SRModel, proto: onnx.ModelProto, graph: GraphInfo, r: Recipe, n: int = 8) -> QuantPlan:
    """The plan a build of recipe ``r`` makes for an in-memory model (the build's own steps)."""
    ctx = context(model, proto, graph, r, n)
    plan = initial_plan(ctx)
    for step in PLAN_STEPS:
        plan = step(ctx, plan)
    return plan


def make_plan(model: SRModel, export: tuple[onnx.ModelProto, GraphInfo], n: int = 8, **quant: object) -> QuantPlan:
    return plan_for(model, export[0], export[1], recipe(quant), n)


def params(model: SRModel, plan: QuantPlan) -> dict:
    return deployed_weights(model.module, plan)


def tiny_srresnet_bn(dead: list[int] = (), const: list[int] | None = None, seed: int = 0) -> SRModel:
    """SRResNet-BN x2, 2 blocks of 16 channels, BN statistics that differ per channel; ``dead`` channels are
    always zero after the ReLU, ``const`` channels exactly constant (ReLU(beta))."""
    from srdeploy.models.srresnet import SRResNet

    torch.manual_seed(seed)
    net = SRResNet(scale=2, n_resblocks=2, n_feats=16, bn=True)
    with torch.no_grad():
        for block in net.body[:2]:
            for bn in (block.bn1, block.bn2):
                bn.running_mean.normal_(0, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.normal_(0, 0.3)
            block.bn1.bias[list(dead)] = -50.0
            if const:
                block.bn1.weight[const] = 0.0
                block.bn1.bias[const] = 0.7
            block.conv2.weight.mul_(0.2)
    return SRModel(module=net.eval(), arch="srresnet", scale=2, hparams=net.hparams, name="tiny_srresnet_bn")


def ort_fused(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """ONNX Runtime with every graph optimization (QDQ fused into integer kernels), CPU."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def simulated(model: SRModel, plan: QuantPlan, profile: str, tier: int, x: np.ndarray) -> np.ndarray:
    from srdeploy.quant.simulate import simulate

    with torch.no_grad():
        return simulate(model, plan, profile, tier)(torch.from_numpy(x)).numpy()
