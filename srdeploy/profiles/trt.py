"""``trt``: explicit quantization for TensorRT 10/11 (strongly typed networks).

Q/DQ on every quantized conv input and on residual skip inputs (so TensorRT fuses conv + add), never on
conv outputs; int8 containers with zero point 0 (TensorRT's rule); non-negative tensors below 8 bit use an
unsigned b-bit grid that still fits int8; FP16 float regions, because TensorRT 11 runs unquantized ops in
the ONNX's dtype.
"""

from __future__ import annotations

import numpy as np

from srdeploy.profiles.base import Profile
from srdeploy.quant.spec import QuantSpec


def _grid(nonnegative: bool, bits: int) -> str:
    return "unsigned_zero" if nonnegative and bits <= 7 else "symmetric"


def _container(_spec: QuantSpec) -> type:
    return np.int8


PROFILE = Profile(
    name="trt",
    summary="TensorRT 10/11: symmetric INT8 Q/DQ on conv inputs and residual skips, FP16 float regions",
    conv_outputs="none",
    residual_skips=True,
    min_output_channels=0,
    activation_grid=_grid,
    activation_container=_container,
    float_dtype="float16",
    int4_weights=False,
    backends=("tensorrt", "onnxruntime"),
    providers=("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
    validation_note="trt-profile graph (FP16 float regions, INT8 Q/DQ) run by ONNX Runtime on the CPU, not TensorRT",
    lint="tensorrt",
)
