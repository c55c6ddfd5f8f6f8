"""``ort_avx2``: the ``ort`` layout for x86 CPUs without VNNI (AVX2 only).

There ONNX Runtime's u8 x s8 convolution kernels add pairs of uint8 x int8 products in saturating 16-bit
registers: 2 x 255 x 127 overflows 32767, so accuracy drops and the graph no longer computes what the plan
says (simulation agreement fell from ~50 to ~44 dB on such a CPU). With weights on a 7-bit grid (|q| <= 63, as
ONNX Runtime's own ``reduce_range`` does) a pair stays below 32130: no saturation, the same result on every
x86 CPU. The runtime prefers this graph on CPUs without VNNI when the build has it (runtime/sessions.py).
The saturation itself was not reproducible on the development machines (AVX-512 VNNI): unverified here.
"""

from __future__ import annotations

from dataclasses import replace

from srdeploy.profiles import ort

PROFILE = replace(
    ort.PROFILE,
    name="ort_avx2",
    summary="ONNX Runtime CPU without VNNI: the ort layout with 7-bit weights (no 16-bit saturation)",
    max_weight_bits=7,
    cpu_without="vnni",
    validation_note="ONNX Runtime CPU; 7-bit weights so AVX2-only CPUs compute what the plan says",
)
