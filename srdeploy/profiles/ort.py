"""``ort``: ONNX Runtime on x86 CPUs.

uint8 asymmetric activations and int8 per-channel weights, with a Q after every quantized conv, so
DQ-Conv-Q fuses into integer QLinearConv kernels and residual DQ-Add-Q into QLinearAdd (the body stays in
int8 NHWC without layout transposes). A conv output that reaches one quantized conv reuses that conv's input
grid (its ReLU then folds into the Q). The network output gets an output Q on the fixed 8-bit image grid ([0, 1],
scale 1/255 at fp16 precision, zero point 0: saving the image as 8-bit gives the same levels back), after
the inverse mean shift where the model has one, which the emission folds into the RGB conv
(passes/output_affine.py); that conv is padded to 16 output channels with zero filters and sliced back on the
uint8 tensor (passes/pad_channels.py). ONNX Runtime then runs it as an integer QLinearConv in the NHWC int8
region instead of a float conv behind a layout transpose (measured on an AMD EPYC with AVX-512 VNNI, EDSR x4,
256x256 LR, 2 threads, interleaved: 403 vs 544 ms, the same drop vs fp32 on the eval set; tools/bench_cpu.py
in docs/BENCHMARKS.md; not measured on AVX2-only CPUs). Other convs with fewer than 4 output channels get no
output Q. Pixel shuffles run on the integer tensor and one-slope PReLUs become LeakyRelu, which ONNX Runtime
fuses into QLinearLeakyRelu (passes/integer_ops.py). The integer residual stream starts through an identity
QLinearConv after the float head, so ONNX Runtime keeps it in NHWC without Transposes around every residual
block (passes/nhwc_entry.py; bit-identical output). Weights of <= 4 bits may be stored as INT4 (a storage
saving: ONNX Runtime convolves INT4 weights in float).

Weights are on a 7-bit grid (|q| <= 63, ONNX Runtime's ``reduce_range``): on x86 CPUs without VNNI (AVX2 only)
the u8 x s8 kernels add pairs of products in saturating 16-bit registers (2 x 255 x 127 overflows 32767), and
with 8-bit weights the graph computed something else there (measured on an AVX2-only AMD EPYC: validation
agreement 7.6-33 dB on the small spandrel networks of tests/models/test_spandrel_build.py, the default EDSR
recipe's drop 0.080 dB in tests/test_parity.py, and 25.6 dB from fp32 on a random 23-block RRDBNet, 41.0 dB with
7-bit weights, in tools/bench_zoo.py). With 7-bit weights a pair stays below 32130, so one graph computes the same on
every x86 CPU (docs/BENCHMARKS.md, architecture zoo: ``ort`` vs ``ort_avx2`` columns).
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
    name="ort",
    summary="ONNX Runtime CPU: uint8 asymmetric activations, int8 per-channel weights, Q after each conv",
    conv_outputs="all",
    residual_skips=True,
    min_output_channels=4,
    activation_grid=_grid,
    activation_container=_container,
    float_dtype="float32",
    int4_weights=True,
    max_weight_bits=7,
    image_output_grid=True,
    pad_output_channels=16,
    integer_movement=True,
    nhwc_entry=True,
    backends=("onnxruntime",),
    providers=("CUDAExecutionProvider", "CPUExecutionProvider"),
    validation_note="ONNX Runtime CPU, integer kernels where fused",
)
