"""``openvino``: OpenVINO's CPU plugin (measured in docs/OPENVINO.md).

OpenVINO's low-precision transformations run every quantized convolution in INT8 whatever the grid (uint8
asymmetric and int8 symmetric measured the same speed), but they do not honour a Q/DQ on a conv output that
feeds a residual Add or a float op: executing the ``ort`` graph, OpenVINO agreed with the plan's simulation at
only 38 dB on a tiny EDSR, 48 dB once those sites were left out of the simulation. So this layout quantizes
only what OpenVINO quantizes: every quantized conv's input (uint8 asymmetric, like ``ort``), the conv outputs
that reach a quantized conv through DepthToSpace (the pixel shuffle runs on integers), no residual skips (the
Add reads the float skip: 2-9 dB closer to fp32 at no measurable speed cost), no output Q on the RGB conv,
fp32 float regions. The graph is also written as OpenVINO IR (openvino/model.xml + .bin). Weights on a 7-bit
grid, as ``ort`` (its docstring): OpenVINO's AVX2 int8 kernels saturate 16-bit pair sums the same way (its
agreement with the plan was 21.8 dB on an AVX2-only CPU with 8-bit weights).
"""

from __future__ import annotations

import numpy as np

from srdeploy.profiles.base import Profile
from srdeploy.quant.spec import QuantSpec


def _grid(_nonnegative: bool, _bits: int) -> str:
    return "asymmetric"


def _container(spec: QuantSpec) -> type:
    return np.int8 if spec.signed else np.uint8


PROFILE = Profile(
    name="openvino",
    summary="OpenVINO CPU: uint8 asymmetric conv inputs, integer pixel shuffle, float residual skips, IR",
    conv_outputs="into_movement",
    residual_skips=False,
    min_output_channels=4,
    activation_grid=_grid,
    activation_container=_container,
    float_dtype="float32",
    int4_weights=False,
    max_weight_bits=7,
    backends=("openvino", "onnxruntime"),
    providers=("CPUExecutionProvider",),
    validation_note="openvino-profile graph run by ONNX Runtime on the CPU (a check of the graph, not of OpenVINO)",
    ir="openvino",
)
