"""srdeploy: post-training deployment compiler for image super-resolution networks.

``import srdeploy`` is cheap and never imports TensorRT or CUDA; the public API below is
resolved lazily on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "build": "srdeploy.pipeline",
    "BuildResult": "srdeploy.pipeline",
    "load_recipe": "srdeploy.recipe",
    "Recipe": "srdeploy.recipe",
    "load_model": "srdeploy.models.loading",
    "load_plan": "srdeploy.quant.plan_io",
    "apply_plan": "srdeploy.quant.apply",
    "simulate": "srdeploy.quant.simulate",
    "Upscaler": "srdeploy.runtime.upscaler",
    "SrdeployError": "srdeploy.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'srdeploy' has no attribute {name!r}")
