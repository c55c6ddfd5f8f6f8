"""ONNX -> OpenVINO IR (model.xml + model.bin), for a build's `openvino` profile.

The IR holds the same graph the CPU plugin reads from the ONNX file (Q/DQ pairs become
FakeQuantize, int8 weights stay int8 with their dequantization), so it runs identically; it only
saves the ONNX frontend's conversion at load time and is the format OpenVINO tools expect.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from srdeploy.backends.openvino import _import_openvino
from srdeploy.errors import BackendUnavailable, SrdeployError
from srdeploy.sigstack import keep_signal_stack


def onnx_to_ir(onnx_path: str | os.PathLike[str], xml_path: str | os.PathLike[str]) -> Path:
    """Convert ``onnx_path`` and write ``xml_path`` and the .bin beside it; returns ``xml_path``.

    Float weights are kept in fp32: ``save_model`` would otherwise compress them to fp16 by
    default, which changes every float layer's numbers against the ONNX graph and the plan.
    Both files appear together or not at all (written in a temporary folder, then moved).
    """
    onnx_path, xml_path = Path(onnx_path), Path(xml_path)
    if not onnx_path.is_file():
        raise SrdeployError(f"ONNX model not found: {onnx_path}", "pass a model written by srdeploy build")
    if xml_path.suffix != ".xml":
        raise SrdeployError(f"IR path {xml_path} does not end in .xml", "name it like openvino/model.xml")
    ov = _import_openvino()
    try:
        with keep_signal_stack():
            model = ov.convert_model(str(onnx_path))
    except Exception as exc:
        raise BackendUnavailable(
            f"OpenVINO cannot convert {onnx_path}: {str(exc).strip().splitlines()[0][:200]}",
            "check that the file is a complete srdeploy output (rebuild it if it was truncated)",
        ) from exc
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=xml_path.parent, prefix=".ir-") as tmp:
        tmp_xml = Path(tmp) / xml_path.name
        with keep_signal_stack():
            ov.save_model(model, str(tmp_xml), compress_to_fp16=False)
            del model
        # The reader looks for the .xml, then its .bin: move the .bin first.
        os.replace(tmp_xml.with_suffix(".bin"), xml_path.with_suffix(".bin"))
        os.replace(tmp_xml, xml_path)
    return xml_path
