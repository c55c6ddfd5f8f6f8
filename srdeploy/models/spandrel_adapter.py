"""Any architecture spandrel knows (SwinIR, SPAN, HAT, ...), through the optional ``zoo`` extra.

spandrel is installed without its torchvision requirement (README, "Other architectures"); it is imported
by ``spandrel_import.import_spandrel``, with a contained stand-in when torchvision is missing.
"""

from __future__ import annotations

import types
from pathlib import Path

import torch
import torch.nn.functional as F

from srdeploy.errors import ModelError
from srdeploy.interrupts import reraise_pending
from srdeploy.models.base import SRModel
from srdeploy.models.loading import check_finite, load_state_dict
from srdeploy.models.spandrel_import import INSTALL_COMMAND, import_spandrel
from srdeploy.models.spandrel_rules import spandrel_size_rules


def load_with_spandrel(path: Path, name: str = "") -> SRModel:
    try:
        spandrel = import_spandrel()
    except Exception as exc:  # ImportError, or a spandrel that does not import beside this torch
        reraise_pending()
        raise ModelError(
            f"model.arch: spandrel needs the spandrel package, which failed to import ({type(exc).__name__}: {exc})",
            f"install it without touching torch: {INSTALL_COMMAND} (README: Other architectures)",
        ) from exc
    sd = load_state_dict(path)
    check_finite(sd, str(path))
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(sd)
    except Exception as exc:
        why = str(exc) or type(exc).__name__
        raise ModelError(f"spandrel does not recognise {path}: {why}", "check that the file is an SR model") from exc
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise ModelError(
            f"{path} is a {descriptor.input_channels}->{descriptor.output_channels} channel model",
            "srdeploy handles RGB -> RGB super-resolution models",
        )
    module = freeze_reparameterized_convs(descriptor.model.eval())
    arch = descriptor.architecture.id
    rules = spandrel_size_rules(arch, getattr(module, "hyperparameters", {}), descriptor.size_requirements)
    return SRModel(
        module=module,
        arch=f"spandrel:{arch}",
        scale=int(descriptor.scale),
        hparams={"spandrel_arch": arch},
        source=str(path),
        name=name or path.stem,
        size_rules=rules,
    )


def _frozen_forward(self: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = self.eval_conv(x)
    return F.leaky_relu(out, negative_slope=0.05) if self.has_relu else out


def freeze_reparameterized_convs(module: torch.nn.Module) -> torch.nn.Module:
    """SPAN's Conv3XC re-folds its three convs into ``eval_conv`` (assigning ``.data``) on every eval forward,
    which torch.export cannot trace. Fold once here and make the forward the folded conv: same output, same
    state dict, traceable."""
    for m in module.modules():
        if type(m).__name__ == "Conv3XC" and hasattr(m, "update_params") and hasattr(m, "eval_conv"):
            with torch.no_grad():
                m.update_params()
            m.forward = types.MethodType(_frozen_forward, m)  # type: ignore[method-assign]
    return module
