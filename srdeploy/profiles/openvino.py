"""``openvino``: OpenVINO's CPU plugin (measured in docs/OPENVINO.md).

OpenVINO's low-precision transformations run every quantized convolution in INT8 whatever the grid (uint8
asymmetric and int8 symmetric measured the same speed), but they do not honour a Q/DQ on a conv output that
feeds a residual Add or a float op: executing the ``ort`` graph, OpenVINO agreed with the plan's simulation at
only 38 dB on a tiny EDSR, 48 dB once those sites were left out of the simulation. So this layout quantizes
only what OpenVINO quantizes: every quantized conv's input (uint8 asymmetric, like ``ort``), the conv outputs
that reach a quantized conv through DepthToSpace (the pixel shuffle runs on integers), the residual skips as the
quant section places them (the block input's Q/DQ is shared by the next conv and the Add's skip, so OpenVINO fuses
the FakeQuantize into the conv + Add that produces the stream: with a float skip it ran standalone, 15 ms of a
205 ms EDSR x4 run at 256x256 on an AVX-512 VNNI EPYC, 182 ms with the shared Q, for 0.012 dB more mean drop and
51 instead of 53 dB agreement on the eval set; docs/OPENVINO.md), no output Q on the RGB conv, fp32 float
regions. The graph is also written as OpenVINO IR (openvino/model.xml + .bin). Weights on a 7-bit grid, as
``ort`` (its docstring): OpenVINO's AVX2 int8 kernels saturate 16-bit pair sums the same way (its
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
    summary="OpenVINO CPU: uint8 asymmetric conv inputs, integer pixel shuffle, quantized residual skips, IR",
    conv_outputs="into_movement",
    residual_skips=True,
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
