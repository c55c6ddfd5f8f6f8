"""Any architecture spandrel knows (SwinIR, ESRGAN, RCAN, ...), through the optional ``zoo`` extra.

spandrel imports torchvision, which has no build matching the CPU torch wheel this project pins;
see the README for the torch+torchvision pair that the extra needs.
"""

from __future__ import annotations

from pathlib import Path

from srdeploy.errors import ModelError
from srdeploy.interrupts import reraise_pending
from srdeploy.models.base import SRModel
from srdeploy.models.loading import check_finite, load_state_dict


def load_with_spandrel(path: Path, name: str = "") -> SRModel:
    try:
        import spandrel
    except Exception as exc:  # ImportError, or torchvision's operator registration failing
        reraise_pending()
        raise ModelError(
            f"model.arch: spandrel needs the spandrel package, which failed to import ({type(exc).__name__}: {exc})",
            "pip install 'srdeploy[zoo]' together with a matching torch+torchvision pair (see README)",
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
