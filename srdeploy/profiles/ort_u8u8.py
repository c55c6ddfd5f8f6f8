"""``ort_u8u8``: the ``ort`` layout with 8-bit weights stored as uint8 (q + 128, zero point 128).

The other saturation-safe answer for x86 CPUs without VNNI (profiles/ort.py): ONNX Runtime runs convolutions
with uint8 weights in its u8 x u8 kernels, which widen both operands to 16 bits before multiplying, so no
pair sum saturates and the weights keep their full 8-bit grid (``ort`` narrows them to 7 bits). The values
are the plan's own signed grid shifted by 128: simulation is that of the plan's weights, unnarrowed.
Opt-in: the runtime does not prefer it anywhere, because ONNX Runtime's u8 x u8 path is much slower than its
u8 x s8 one on a VNNI CPU (docs/BENCHMARKS.md, tools/bench_weight_bits.py); its speed without VNNI is not measured.
No INT4 storage (that would need UINT4)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from srdeploy.profiles import ort

PROFILE = replace(
    ort.PROFILE,
    name="ort_u8u8",
    summary="ONNX Runtime CPU: the ort layout with 8-bit weights as uint8 (u8 x u8 kernels, no 16-bit saturation)",
    max_weight_bits=8,
    weight_container=np.uint8,
    int4_weights=False,
    validation_note="ONNX Runtime CPU; uint8 weights (zero point 128): u8 x u8 kernels",
)
