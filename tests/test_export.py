from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from srtest import tiny_edsr

from srdeploy.errors import ExportError
from srdeploy.export import check_dynamic_sizes, export_onnx
from srdeploy.models.base import SRModel


def test_names_interface_and_dynamic_axes(tiny_export, tiny_model) -> None:
    proto, graph = tiny_export
    inits = {i.name for i in proto.graph.initializer}
    for name, _ in tiny_model.module.named_parameters():
        if name.endswith("weight"):
            assert name in inits
    assert proto.graph.input[0].name == "input" and proto.graph.output[0].name == "output"
    dims = [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "", "height", "width"]
    assert set(graph.residuals) == {"body.0.add", "body.1.add", "body_add"}
    add = graph.residuals["body.0.add"]
    assert graph.op_types[graph.producers[add.branch]] == "Conv"
    assert all(not n.metadata_props for n in proto.graph.node)


def test_export_is_byte_identical(tmp_path: Path) -> None:
    a = export_onnx(tiny_edsr(), tmp_path / "a.onnx").read_bytes()
    b = export_onnx(tiny_edsr(), tmp_path / "b.onnx").read_bytes()
    assert a == b


class FrozenShape(torch.nn.Module):
    """Uses a Python int from the input shape: exporters bake such sizes into the graph."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = int(x.shape[2])
        return torch.nn.functional.interpolate(x, size=(2 * 16, 2 * h // h * 16), mode="nearest")


def test_a_frozen_shape_is_detected(tmp_path: Path) -> None:
    model = SRModel(module=FrozenShape(), arch="frozen", scale=2)
    with pytest.raises(ExportError):
        export_onnx(model, tmp_path / "f.onnx")
    assert not (tmp_path / "f.onnx").exists()


def test_check_dynamic_sizes_catches_a_mismatch(tmp_path: Path) -> None:
    model = tiny_edsr()
    path = export_onnx(model, tmp_path / "m.onnx")
    other = tiny_edsr(seed=5)
    with pytest.raises(ExportError, match="differs"):
        check_dynamic_sizes(path, other)
    proto = onnx.load(str(path))
    assert np.isfinite(onnx.numpy_helper.to_array(proto.graph.initializer[0])).all()
