"""Builders for tiny build folders (seconds each) and the receptive fields the tests rely on.

A 1-block, 8-feature EDSR x2 has an LR receptive-field radius of 6 pixels (head 1 + block 2 + body
1 + upsampler 1 + HR tail 1), which the tiling tests rely on; a 4-block one has radius 12.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TINY_RF = 6
WIDE_RF = 12


def make_checkpoint(path: Path, n_resblocks: int, scale: int = 2, n_feats: int = 8, seed: int = 0) -> Path:
    import torch

    from srdeploy.models.edsr import EDSR
    from srdeploy.models.loading import save_checkpoint

    torch.manual_seed(seed)
    model = EDSR(scale=scale, n_resblocks=n_resblocks, n_feats=n_feats)
    with torch.no_grad():  # larger body weights: a far-reaching, visible receptive field
        for p in model.body.parameters():
            p.mul_(3.0)
    return save_checkpoint(model, path)


def make_build(root: Path, name: str, ckpt: Path, profiles: tuple[str, ...] = ("trt", "ort"), **quant: Any) -> Path:
    from srdeploy.pipeline import build
    from srdeploy.recipe import recipe_from_dict

    recipe = recipe_from_dict(
        {
            "name": name,
            "model": {"path": str(ckpt)},
            "calib": {"patches": 4, "patch_size": 16},
            "quant": {"quantize_roles": ["body", "upsampler"], **quant},
            "validate": {"max_images": 1},
            "tensorrt": {"enabled": False},
            "export": {"profiles": list(profiles)},
        }
    )
    return build(recipe, root / name, run_validation=False).out_dir
