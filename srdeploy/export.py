"""fp32 ONNX export with dynamic batch/height/width and stable names.

Parameter names survive as initializer names (``body.3.body.0.weight``); every node is renamed
after the module it came from (``body.3.add:Add``), and exporter metadata (stack traces with local
paths) is dropped so the same model gives the same bytes on every machine.
"""

from __future__ import annotations

import ast
import logging
import os
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import torch

from srdeploy.errors import ExportError
from srdeploy.fsutil import atomic_file
from srdeploy.models.base import SRModel
from srdeploy.models.common import ResidualAdd

DEFAULT_OPSET = 19
INPUT_NAME, OUTPUT_NAME = "input", "output"
_CHECK_SIZES = ((1, 19, 23), (2, 24, 16))


def residual_add_paths(module: torch.nn.Module) -> list[str]:
    return sorted(name for name, m in module.named_modules() if isinstance(m, ResidualAdd))


# torch's ONNX exporter logs "torchvision is not installed. Skipping torchvision::nms" (and 3 more) on every
# export while building its op table; SR networks use no torchvision op, so that logger is muted while we export.
EXPORTER_REGISTRY_LOGGER = "torch.onnx._internal.exporter._registration"


@contextmanager
def quiet_exporter_registry() -> Iterator[None]:
    log = logging.getLogger(EXPORTER_REGISTRY_LOGGER)
    before = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(before)


def export_onnx(model: SRModel, path: str | os.PathLike[str], opset: int = DEFAULT_OPSET, check: bool = True) -> Path:
    """Export ``model`` (already in deploy form) to ``path`` and verify dynamic sizes."""
    module = model.module.eval()
    rules = model.size_rules
    # batch 2: torch.export specialises a size-1 dim, and networks that fold the batch into reshapes
    # (PLKSR, OmniSR) then violate the dynamic batch constraint; a graph with a fixed batch is traced at it.
    # H and W: the rules' padded size (window networks are exact only at multiples of their window).
    side = rules.padded(16 * rules.multiple if rules.multiple > 1 else 16)
    batch = torch.export.Dim.STATIC if rules.batch else torch.export.Dim("batch", max=1024)
    sample = torch.rand(rules.batch or 2, 3, side, side, generator=torch.Generator().manual_seed(0))
    dims = {0: batch, 2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    try:
        with warnings.catch_warnings(), torch.no_grad(), quiet_exporter_registry():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                (sample,),
                dynamo=True,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({k: v for k, v in dims.items()},),
                verbose=False,
            )
        proto = program.model_proto
    except Exception as exc:
        raise ExportError(
            f"torch.onnx.export failed for {model.arch}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
            "the network must be traceable by torch.export with dynamic height and width "
            "(no data-dependent Python control flow on shapes)",
        ) from exc
    proto = normalize_graph(proto)
    path = Path(path)
    with atomic_file(path) as tmp:
        onnx.save(proto, tmp)
        if check:
            check_dynamic_sizes(tmp, model)
    return path


def _module_path(node: onnx.NodeProto) -> str:
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            scopes = ast.literal_eval(prop.value)
            return str(scopes[-2]) if len(scopes) >= 2 else ""
    return ""


def normalize_graph(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Rename nodes after their module, strip metadata and doc strings."""
    counts: Counter[str] = Counter()
    for node in proto.graph.node:
        base = f"{_module_path(node) or 'root'}:{node.op_type}"
        counts[base] += 1
        node.name = base if counts[base] == 1 else f"{base}_{counts[base] - 1}"
        del node.metadata_props[:]
        node.doc_string = ""
    del proto.metadata_props[:]
    proto.doc_string = ""
    proto.graph.doc_string = ""
    for vi in list(proto.graph.value_info) + list(proto.graph.input) + list(proto.graph.output):
        del vi.metadata_props[:]
    for vi, names in (
        (proto.graph.input[0], ("batch", "height", "width")),
        (proto.graph.output[0], ("batch", "out_height", "out_width")),
    ):
        dims = vi.type.tensor_type.shape.dim
        for i, name in zip((0, 2, 3), names, strict=True):
            if dims[i].HasField("dim_param"):
                dims[i].dim_param = name
    for init in proto.graph.initializer:
        del init.metadata_props[:]
    proto.producer_name = "srdeploy"
    from srdeploy import __version__

    proto.producer_version = __version__
    return proto


def check_dynamic_sizes(path: str | os.PathLike[str], model: SRModel, tol: float = 1e-3) -> None:
    """Run the ONNX at two batch/size combinations and compare with PyTorch."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ExportError(f"ONNX Runtime cannot load the exported model: {exc}", "report this as a bug") from exc
    rules = model.size_rules
    for n, h, w in _CHECK_SIZES:
        # sizes the graph accepts (the runtime pads to them), distinct from the traced one
        n, h, w = rules.batch or n, rules.padded(h), rules.padded(w)
        x = torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(h * w))
        try:
            (got,) = sess.run(None, {INPUT_NAME: x.numpy()})
        except Exception as exc:
            raise ExportError(
                f"the exported model fails at input size {n}x3x{h}x{w}: {str(exc).splitlines()[0][:200]}",
                "the exporter froze a shape; make the network's forward free of size-dependent constants",
            ) from exc
        expected = (n, 3, h * model.scale, w * model.scale)
        if got.shape != expected:
            raise ExportError(
                f"exported model gives shape {got.shape} for input {n}x3x{h}x{w}, expected {expected} (x{model.scale})",
                "the exporter froze a shape, or model.scale is wrong; check reshapes/upsampling in forward()",
            )
        with torch.no_grad():
            ref = model.module(x).numpy()
        if got.shape != ref.shape:
            raise ExportError(
                f"exported model gives shape {got.shape} for input {n}x3x{h}x{w}, PyTorch gives {ref.shape}",
                "the exporter froze a shape; check reshapes/upsampling in the network's forward",
            )
        err = float(np.max(np.abs(got - ref)))
        if not np.isfinite(err) or err > tol:
            raise ExportError(
                f"exported model differs from PyTorch by {err:.3g} at input {n}x3x{h}x{w}",
                "the export is not faithful; check for unsupported ops",
            )
