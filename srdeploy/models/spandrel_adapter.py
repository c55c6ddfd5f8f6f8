"""Any architecture spandrel knows (SwinIR, SPAN, HAT, ...), through the optional ``zoo`` extra.

spandrel is installed without its torchvision requirement (README, "Other architectures"); it is imported
by ``spandrel_import.import_spandrel``, with a contained stand-in when torchvision is missing.
"""

from __future__ import annotations

from pathlib import Path

from srdeploy.errors import ModelError
from srdeploy.interrupts import reraise_pending
from srdeploy.models.base import SRModel
from srdeploy.models.loading import check_finite, load_state_dict
from srdeploy.models.spandrel_import import INSTALL_COMMAND, import_spandrel


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
        raise ModelError(f"spandrel does not recognise {path}: {exc}", "check that the file is an SR model") from exc
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise ModelError(
            f"{path} is a {descriptor.input_channels}->{descriptor.output_channels} channel model",
            "srdeploy handles RGB -> RGB super-resolution models",
        )
    module = descriptor.model.eval()
    size = descriptor.size_requirements
    return SRModel(
        module=module,
        arch=f"spandrel:{descriptor.architecture.id}",
        scale=int(descriptor.scale),
        hparams={"spandrel_arch": descriptor.architecture.id},
        source=str(path),
        name=name or path.stem,
        size_multiple=int(getattr(size, "multiple_of", 1) or 1),
    )
