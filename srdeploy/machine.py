"""The machine a number was measured on: CPU model, the ISA flags that decide which INT8 kernels run, cores,
runtime versions. Recorded in every report and benchmark, because the machines differ: on x86 CPUs without
VNNI, ONNX Runtime's u8 x s8 kernels sum pairs of products in saturating 16-bit registers."""

from __future__ import annotations

import os
import platform
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from srdeploy.interrupts import reraise_pending

ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni")


@lru_cache(maxsize=1)
def cpu() -> tuple[str, tuple[str, ...]]:
    """(CPU model, the ISA_FLAGS it has). Flags are unknown (empty) off Linux."""
    model, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), tuple(f for f in ISA_FLAGS if f in flags)


def has_vnni() -> bool | None:
    """True/False on x86 Linux; None where the flags cannot be read (not x86, or no /proc/cpuinfo)."""
    _, flags = cpu()
    if not flags:
        return None
    return any(f in flags for f in VNNI_FLAGS)


def versions(modules: tuple[str, ...] = ("onnxruntime", "openvino", "torch")) -> dict[str, str | None]:
    import numpy as np

    out: dict[str, str | None] = {"python": platform.python_version(), "numpy": np.__version__}
    for module in modules:
        try:
            out[module] = __import__(module).__version__
        except ImportError:
            reraise_pending()
            out[module] = None
    return out


def machine_info(modules: tuple[str, ...] = ("onnxruntime", "openvino", "torch")) -> dict[str, Any]:
    model, flags = cpu()
    return dict(
        cpu=model,
        isa=list(flags),
        vnni=has_vnni(),
        cores=os.cpu_count(),
        versions=versions(modules),
        date=time.strftime("%Y-%m-%d"),
    )
