"""Which CUDA GPU is there, asked of the CUDA runtime that Polygraphy loads (no torch, no cuda-python).

Polygraphy's CUDA wrapper opens libcudart with ctypes (from a pip ``nvidia-cuda-runtime`` wheel, a
CUDA toolkit or the loader path); srdeploy calls four more of its documented functions:
cudaGetDeviceCount, cudaGetDevice, cudaDeviceGetAttribute (compute capability) and
cudaGetDeviceProperties (only the leading ``char name[256]`` of cudaDeviceProp is read, a layout
every CUDA version keeps). Importing this module loads nothing.

The GPU path is unverified here (no GPU on these machines); the failure paths run on them: a
machine with a CUDA toolkit but no driver gets cudaErrorInsufficientDriver.
"""

from __future__ import annotations

import ctypes
from typing import Any

from srdeploy.errors import BackendUnavailable

GPU_HINT = "run on a machine with an NVIDIA GPU and its driver (nvidia-smi must list the GPU)"
_CC_MAJOR, _CC_MINOR = 75, 76  # cudaDevAttrComputeCapabilityMajor / Minor
_PROP_BYTES = 16384  # larger than cudaDeviceProp in any CUDA release (about 1 KB)


def cudart() -> Any:
    """The CUDA runtime library Polygraphy uses (a ctypes.CDLL)."""
    from polygraphy.exception import PolygraphyException

    from srdeploy.backends.trt_loaders import captured_log

    with captured_log():  # Polygraphy warns on stdout while it searches for libcudart
        try:
            from polygraphy import cuda

            return cuda.wrapper().handle
        except (OSError, PolygraphyException) as exc:
            raise BackendUnavailable(
                f"the CUDA runtime library (libcudart) cannot be loaded: {str(exc).splitlines()[0][:160]}",
                "install TensorRT's pip wheels (they bring nvidia-cuda-runtime) or a CUDA toolkit; " + GPU_HINT,
            ) from exc


def cuda_error(lib: Any, status: int) -> str:
    try:
        lib.cudaGetErrorName.restype = ctypes.c_char_p
        lib.cudaGetErrorString.restype = ctypes.c_char_p
        name, text = lib.cudaGetErrorName(status), lib.cudaGetErrorString(status)
        return f"error {status} {name.decode()} ({text.decode()})"
    except (AttributeError, UnicodeDecodeError):
        return f"error {status}"


def _call(lib: Any, what: str, status: int) -> None:
    if status != 0:
        raise BackendUnavailable(f"no usable CUDA GPU: {what} failed with {cuda_error(lib, status)}", GPU_HINT)


def _device_name(lib: Any, device: int) -> str:
    # CUDA 12 exports the current layout as _v2 (the plain name is the old one); CUDA 13 only the plain name.
    query = getattr(lib, "cudaGetDeviceProperties_v2", None) or lib.cudaGetDeviceProperties
    buf = ctypes.create_string_buffer(_PROP_BYTES)
    _call(lib, "cudaGetDeviceProperties", query(buf, ctypes.c_int(device)))
    return buf.raw[:256].split(b"\0", 1)[0].decode(errors="replace") or f"CUDA device {device}"


def cuda_device() -> tuple[str, tuple[int, int]]:
    """(GPU name, compute capability) of the current CUDA device; BackendUnavailable says why not."""
    lib = cudart()
    count, device = ctypes.c_int(0), ctypes.c_int(0)
    _call(lib, "cudaGetDeviceCount", lib.cudaGetDeviceCount(ctypes.byref(count)))
    if count.value < 1:
        raise BackendUnavailable("no usable CUDA GPU: the CUDA runtime sees 0 devices", GPU_HINT)
    _call(lib, "cudaGetDevice", lib.cudaGetDevice(ctypes.byref(device)))
    cc = []
    for attr in (_CC_MAJOR, _CC_MINOR):
        value = ctypes.c_int(0)
        _call(lib, "cudaDeviceGetAttribute", lib.cudaDeviceGetAttribute(ctypes.byref(value), attr, device))
        cc.append(int(value.value))
    return _device_name(lib, device.value), (cc[0], cc[1])
