"""Reference models shipped with srdeploy (trained by tools/train_reference.py).

Weights live in ``srdeploy/zoo/<name>.safetensors`` with a model card ``<name>.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from srdeploy.errors import ModelError

ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"

# name -> (architecture, hyper-parameters used for training)
REFERENCE_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "edsr_baseline_x4": ("edsr", dict(scale=4, n_resblocks=16, n_feats=64, res_scale=1.0)),
    "edsr_baseline_x2": ("edsr", dict(scale=2, n_resblocks=16, n_feats=64, res_scale=1.0)),
    "srresnet_bn_x4": ("srresnet", dict(scale=4, n_resblocks=16, n_feats=64, bn=True)),
    "carn_x4": ("carn", dict(scale=4, n_feats=64, multi_scale=False)),
}


def is_zoo_name(name: str) -> bool:
    return name in REFERENCE_MODELS


def weights_path(name: str) -> Path:
    if name not in REFERENCE_MODELS:
        raise ModelError(f"unknown reference model '{name}'", f"bundled models: {', '.join(REFERENCE_MODELS)}")
    path = ZOO_DIR / f"{name}.safetensors"
    if not path.is_file():
        raise ModelError(
            f"reference model '{name}' has no weights at {path}",
            f"train it with: python tools/train_reference.py --model {name}",
        )
    return path


def model_card(name: str) -> dict[str, Any]:
    path = ZOO_DIR / f"{name}.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def available() -> list[str]:
    return [n for n in REFERENCE_MODELS if (ZOO_DIR / f"{n}.safetensors").is_file()]
