"""What a profile is: the Q/DQ layout rules, float dtype and opset needs of one deployment target, and the
backends that execute its graphs. One module per profile; the table is in profiles/__init__.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from srdeploy.quant.plan import Emission
from srdeploy.quant.spec import QuantSpec

INT4_OPSET = 21  # INT4 initializers
FP16_SCALE_OPSET = 19  # FP16 Q/DQ scales


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    # Q/DQ layout
    # which conv outputs get a Q: "all" (ONNX Runtime fuses DQ-Conv-Q into QLinearConv), "into_movement" (only
    # outputs reaching a quantized conv through DepthToSpace, so the pixel shuffle runs on integers), "none"
    conv_outputs: str
    min_output_channels: int  # convs with fewer output channels get no output Q
    residual_skips: bool  # Q/DQ on the skip input of residual Adds (quant.residual_skips chooses which)
    activation_grid: Callable[[bool, int], str]  # (tensor is non-negative, bits) -> grid kind (quant/spec.py)
    activation_container: Callable[[QuantSpec], type]  # integer dtype of an activation's Q/DQ
    # emission
    float_dtype: str  # dtype of unquantized regions
    int4_weights: bool  # <= 4-bit weights may be stored as INT4 (opset 21)
    # execution
    backends: tuple[str, ...]  # backends that run this profile's graphs, the intended one first
    providers: tuple[str, ...]  # ONNX Runtime execution providers to prefer for it, best first
    validation_note: str  # how validation executes it here
    lint: str | None = None  # static checker run on every graph ("tensorrt")
    max_weight_bits: int = 8  # weight grids wider than this are narrowed (per channel) for this profile
    # integer dtype of the weight initializers: int8 (zero point 0), or uint8 holding q + 128 with zero point 128
    # (the same grid; ONNX Runtime then runs its u8 x u8 kernels, which widen to 16 bits before multiplying)
    weight_container: type = np.int8
    cpu_without: str | None = None  # the runtime prefers this profile on CPUs lacking this feature ("vnni")
    ir: str | None = None  # also write the graph in this runtime's own format ("openvino": model.xml + .bin)
    # the network output computed by a quantized conv (directly, or through a per-channel affine 1x1 conv that
    # the emission folds into it) gets an output Q on the 8-bit image grid ([0, 1], scale 1/255 at fp16
    # precision, zero point 0: saving the image as 8-bit gives the levels back), whatever its channel count
    image_output_grid: bool = False
    # that output conv, when it has fewer output channels, is emitted with zero filters up to this many and a
    # Slice back (ONNX Runtime's int8 conv kernel is slower than its float one on narrow outputs); 0: never
    pad_output_channels: int = 0
    # pixel shuffles on the integer tensor (DQ moved after DepthToSpace) and one-slope PReLU as LeakyRelu, so
    # ONNX Runtime keeps integers between quantized convs (passes/integer_ops.py)
    integer_movement: bool = False
    # a Q entering the integer residual stream from a float op is re-emitted through an identity 1x1 conv, so
    # ONNX Runtime starts the stream in NHWC and drops 2 layout Transposes per residual block (passes/nhwc_entry.py)
    nhwc_entry: bool = False

    def emission(self, opset: int, weight_bits: int, int4_requested: bool) -> Emission:
        int4 = self.int4_weights and int4_requested and weight_bits <= 4
        needed = max(opset, INT4_OPSET if int4 else 0, FP16_SCALE_OPSET if self.float_dtype == "float16" else 0)
        return Emission(opset=needed, float_dtype=self.float_dtype, int4_weights=int4)

    def weight_spec(self, spec: QuantSpec) -> QuantSpec:
        """The weight grid this profile emits (and its simulation uses) for the plan's ``spec``."""
        return spec if spec.bits <= self.max_weight_bits else spec.narrowed(self.max_weight_bits)

    @property
    def numpy_float(self) -> type:
        return np.float16 if self.float_dtype == "float16" else np.float32
