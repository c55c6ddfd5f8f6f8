"""Safe checkpoint loading and architecture detection.

Checkpoints are read with ``torch.load(weights_only=True)`` (no arbitrary code runs) or from
safetensors. Common wrappers (``state_dict``, ``params_ema``, ``model``...) and DataParallel's
``module.`` prefix are unwrapped.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from srdeploy.errors import ModelError
from srdeploy.fsutil import atomic_file
from srdeploy.models.base import SRModel, SRNetwork
from srdeploy.models.registry import convert_layout, detect_architecture, get_architecture

WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model", "net", "generator", "weights")


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into a flat name -> tensor dict, refusing anything unsafe."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"checkpoint {path} is a folder, not a file", "pass the weights file (.pth, .safetensors)")
    if not path.is_file():
        raise ModelError(f"checkpoint not found: {path}", "check the path, or use a bundled model name")
    if path.stat().st_size == 0:
        raise ModelError(f"checkpoint is empty (0 bytes): {path}", "re-download or re-export the file")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file

            raw: Any = load_file(str(path))
        except Exception as exc:  # safetensors raises several types for corrupt headers
            raise ModelError(f"cannot read safetensors file {path}: {exc}", "the file is corrupt or truncated") from exc
    else:
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelError(
                f"cannot load checkpoint {path} safely: {_unsafe_reason(exc)}",
                "re-save the weights with torch.save(model.state_dict(), path) or as .safetensors",
            ) from exc
    return unwrap_state_dict(raw, str(path))


def _unsafe_reason(exc: Exception) -> str:
    """What torch.load(weights_only=True) refused, in one short clause (its own messages run to a page, and
    a damaged file raises anything from IndexError to OSError)."""
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
    if found:
        return f"it pickles the Python object {found.group(1)}, which weights-only loading refuses to run"
    return (
        "it is not a PyTorch checkpoint that weights-only loading can read (corrupt, truncated, a plain "
        f"pickle of Python objects, or another file format; {type(exc).__name__})"
    )


def unwrap_state_dict(raw: Any, origin: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensors of ``raw``, found under the first WRAPPER_KEYS entry present at each level (so
    ``params_ema`` wins over ``params``, as in Real-ESRGAN's loader)."""
    obj = raw
    for _ in range(3):
        if isinstance(obj, Mapping) and not _looks_like_state_dict(obj):
            inner = next((obj[k] for k in WRAPPER_KEYS if k in obj and isinstance(obj[k], Mapping)), None)
            if inner is None:
                break
            obj = inner
    if isinstance(obj, Mapping) and obj and not _looks_like_state_dict(obj):
        found = ", ".join(repr(k) for k in list(obj)[:12]) + (", ..." if len(obj) > 12 else "")
        raise ModelError(
            f"{origin} is a dict without tensors or a known wrapper key; keys found: {found}",
            f"weights are read from a state dict or from one of {', '.join(WRAPPER_KEYS)}; re-save the "
            "network's weights with torch.save(model.state_dict(), path)",
        )
    if not isinstance(obj, Mapping) or not _looks_like_state_dict(obj):
        raise ModelError(
            f"{origin} holds no state dict of tensors (top-level type {type(raw).__name__})",
            "save the weights with torch.save(model.state_dict(), path)",
        )
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def _looks_like_state_dict(obj: Mapping[str, Any]) -> bool:
    return bool(obj) and any(isinstance(v, torch.Tensor) for v in obj.values())


def check_finite(sd: Mapping[str, torch.Tensor], origin: str) -> None:
    for name, t in sd.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ModelError(
                f"{origin}: tensor '{name}' contains NaN or Inf",
                "the checkpoint is corrupt or training diverged; use an earlier checkpoint",
            )


def build_model(
    state_dict: Mapping[str, torch.Tensor], arch: str | None = None, **overrides: Any
) -> tuple[SRNetwork, str, dict[str, Any]]:
    state_dict = convert_layout(state_dict, arch)
    if arch in (None, "auto"):
        spec, hparams = detect_architecture(state_dict)
    else:
        spec = get_architecture(arch)
        detected = spec.detect(state_dict)
        if detected is None:
            raise ModelError(
                f"the checkpoint's keys do not match the '{arch}' layout",
                "leave model.arch unset to auto-detect, or check that the file is a " + arch + " checkpoint",
            )
        hparams = detected
    unknown = set(overrides) - set(spec.hparam_names)
    if unknown:
        raise ModelError(
            f"unknown hyper-parameter(s) for {spec.name}: {sorted(unknown)}",
            f"valid ones are {list(spec.hparam_names)}",
        )
    hparams.update({k: v for k, v in overrides.items() if v is not None})
    module = spec.build(**hparams)
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    # Mean-shift constants are not learned; old exports sometimes omit them.
    missing = [k for k in missing if not k.startswith(("sub_mean", "add_mean")) and "num_batches_tracked" not in k]
    unexpected = sorted(set(state_dict) - set(own))
    if missing or unexpected:
        raise ModelError(
            f"checkpoint does not fit {spec.name} {hparams}: missing {missing[:4]}, unexpected {unexpected[:4]}",
            "the file may be for another scale or variant; set model.arch / model.scale explicitly",
        )
    for key, value in state_dict.items():
        if own[key].shape != value.shape:
            raise ModelError(
                f"checkpoint tensor '{key}' has shape {tuple(value.shape)}, the {spec.name} model expects "
                f"{tuple(own[key].shape)}",
                "check model.scale and the architecture variant",
            )
    module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}, strict=False)
    module.eval()
    return module, spec.name, hparams


def load_model(source: str | os.PathLike[str], arch: str | None = None, name: str = "", **overrides: Any) -> SRModel:
    """Load a bundled reference model by name, or a checkpoint file by path."""
    from srdeploy.models import zoo

    src = str(source)
    if zoo.is_zoo_name(src) and not Path(src).exists():
        path = zoo.weights_path(src)
        name = name or src
    else:
        path = Path(src)
    if arch == "spandrel":
        from srdeploy.models.spandrel_adapter import load_with_spandrel

        return load_with_spandrel(path, name=name)
    sd = load_state_dict(path)
    check_finite(sd, str(path))
    module, arch_name, hparams = build_model(sd, arch, **overrides)
    scale = int(hparams["scale"])
    if not math.isfinite(float(scale)) or scale < 1:
        raise ModelError(f"invalid scale {scale}", "set model.scale to 2, 3 or 4")
    return SRModel(
        module=module, arch=arch_name, scale=scale, hparams=hparams, source=str(path), name=name or path.stem
    )


def save_checkpoint(module: torch.nn.Module, path: str | os.PathLike[str], half: bool = False) -> Path:
    """Write a state dict atomically (.safetensors or .pt by suffix)."""
    path = Path(path)
    sd = {k: (v.half() if half and v.is_floating_point() else v).contiguous() for k, v in module.state_dict().items()}
    with atomic_file(path) as tmp:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(sd, str(tmp))
        else:
            torch.save(sd, tmp)
    return path
