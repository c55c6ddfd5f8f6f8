"""``ort_avx2``: the ``ort`` layout with 7-bit weights, named for x86 CPUs without VNNI (AVX2 only).

There ONNX Runtime's u8 x s8 convolution kernels add pairs of uint8 x int8 products in saturating 16-bit
registers: 2 x 255 x 127 overflows 32767, so with 8-bit weights the graph no longer computes what the plan
says. With weights on a 7-bit grid (|q| <= 63, as ONNX Runtime's own ``reduce_range`` does) a pair stays below
32130: no saturation. Measured on an AVX2-only CPU (see the ``ort`` profile), the ``ort`` profile itself now
uses 7-bit weights, so this profile's arithmetic is the same; it stays for recipes that name it, and the runtime
prefers it on CPUs without VNNI when the build has it (runtime/sessions.py)."""

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
