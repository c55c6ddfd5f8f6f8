"""RRDBNet and Compact export with dynamic H/W: ONNX Runtime equals PyTorch at odd sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from srdeploy.export import export_onnx, residual_add_paths
from srdeploy.models.base import SRModel, SRNetwork
from srdeploy.models.compact import SRVGGNetCompact
from srdeploy.models.deploy_form import to_deploy_form
from srdeploy.models.rrdbnet import RRDBNet
from srdeploy.passes.graph_info import analyze

ODD_SIZES = ((1, 17, 21), (2, 13, 11))


def _export_and_compare(net: SRNetwork, tmp: Path) -> onnx.ModelProto:
    model = to_deploy_form(SRModel(module=net.eval(), arch=net.arch, scale=net.scale, hparams=net.hparams))
    path = export_onnx(model, tmp / "fp32.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n, h, w in ODD_SIZES:
        x = torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(h))
        (got,) = sess.run(None, {"input": x.numpy()})
        with torch.no_grad():
            ref = net(x).numpy()
        assert got.shape == (n, 3, h * net.scale, w * net.scale)
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)
    return onnx.load(str(path))


@pytest.mark.parametrize("scale", [4, 2])
def test_rrdbnet_exports_with_dynamic_sizes(scale: int, tmp_path: Path) -> None:
    torch.manual_seed(scale)
    net = RRDBNet(scale=scale, num_feat=16, num_block=2, num_grow_ch=8)
    proto = _export_and_compare(net, tmp_path)
    # deploy form: the RDB 0.2 lives in conv5, only each RRDB's own 0.2 remains a Mul
    body_muls = sorted(n.name for n in proto.graph.node if n.op_type == "Mul" and n.name.startswith("body."))
    assert body_muls == ["body.0:Mul", "body.1:Mul"]
    assert [n.op_type for n in proto.graph.node].count("Resize") == 2
    graph = analyze(proto, residual_add_paths(net))
    assert set(graph.residuals) == set(residual_add_paths(net)) and len(graph.residuals) == 2 * 4 + 1
    assert set(graph.convs) == set(net.layer_roles())


@pytest.mark.slow
@pytest.mark.parametrize("scale", [1, 8])
def test_rrdbnet_x1_and_x8_export(scale: int, tmp_path: Path) -> None:
    torch.manual_seed(scale)
    _export_and_compare(RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow_ch=4), tmp_path)


@pytest.mark.parametrize(("scale", "act"), [(4, "prelu"), (2, "leakyrelu")])
def test_compact_exports_with_dynamic_sizes(scale: int, act: str, tmp_path: Path) -> None:
    torch.manual_seed(scale)
    net = SRVGGNetCompact(scale=scale, num_feat=16, num_conv=4, act_type=act)
    proto = _export_and_compare(net, tmp_path)
    graph = analyze(proto, residual_add_paths(net))
    assert list(graph.residuals) == ["base_add"]
    assert set(graph.convs) == set(net.layer_roles())
