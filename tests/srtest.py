"""Test helpers: tiny seeded models, patches, exports and plans (no downloads, seconds to make)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch

from srdeploy.calib.config import QuantConfig
from srdeploy.calib.flow import calibrate
from srdeploy.export import export_onnx, residual_add_paths
from srdeploy.models.base import SRModel
from srdeploy.models.edsr import EDSR
from srdeploy.passes.graph_info import GraphInfo, analyze

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


def make_plan(model: SRModel, graph: GraphInfo, cfg: QuantConfig, n: int = 8):
    return calibrate(model, graph, patches(n), cfg).plan
