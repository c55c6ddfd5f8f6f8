"""Import spandrel without a working torchvision.

spandrel imports ``torchvision.transforms.functional`` (``InterpolationMode``, ``rotate``, ``normalize``) in
two architectures that are not super-resolution networks (LaMa inpainting, RestoreFormer face restoration).
PyPI has no torchvision that imports beside the CPU torch this project pins, so when torchvision is missing or
fails to import, spandrel is imported with a stand-in for exactly those names, which lives in ``sys.modules``
only during that import: nothing else (torch.onnx, the user's code) ever sees a torchvision that is not there.
Calling a stand-in function (loading LaMa or RestoreFormer) raises a ModelError naming the real fix.
"""

from __future__ import annotations

import enum
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from srdeploy.errors import ModelError

# the [zoo] extra holds spandrel's requirements except torch and torchvision; spandrel itself goes in with
# --no-deps (pyproject cannot say that), so the pinned torch is never replaced
INSTALL_COMMAND = "pip install 'srdeploy[zoo]' && pip install --no-deps spandrel==0.4.2"
STAND_IN = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")


class InterpolationMode(enum.Enum):
    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"


def _needs_torchvision(name: str) -> Callable[..., Any]:
    def missing(*_args: Any, **_kwargs: Any) -> Any:
        raise ModelError(
            f"this spandrel architecture needs torchvision.transforms.functional.{name}, and torchvision is not "
            "installed (srdeploy imported spandrel with a stand-in)",
            "super-resolution architectures do not need it; for this one install a torch+torchvision pair",
        )

    return missing


def _stand_in_modules() -> dict[str, types.ModuleType]:
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode = InterpolationMode  # type: ignore[attr-defined]
    for name in ("rotate", "normalize"):
        setattr(functional, name, _needs_torchvision(name))
    transforms = types.ModuleType("torchvision.transforms")
    transforms.functional = functional  # type: ignore[attr-defined]
    root = types.ModuleType("torchvision")
    root.transforms = transforms  # type: ignore[attr-defined]
    root.__srdeploy_stand_in__ = True  # type: ignore[attr-defined]
    return dict(zip(STAND_IN, (root, transforms, functional), strict=True))


@contextmanager
def torchvision_stand_in() -> Iterator[None]:
    """The stand-in in ``sys.modules`` for the duration of the block; what was there before comes back."""
    saved = {name: sys.modules.get(name) for name in STAND_IN}
    sys.modules.update(_stand_in_modules())
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _forget_spandrel() -> None:
    for name in [n for n in sys.modules if n == "spandrel" or n.startswith("spandrel.")]:
        del sys.modules[name]


def _torchvision_works() -> bool:
    try:
        import torchvision.transforms.functional  # noqa: F401
    except Exception:  # ImportError, or torchvision's operators failing to register against this torch
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        return False
    return True


def import_spandrel() -> types.ModuleType:
    """spandrel, imported with the real torchvision when it works, else with the stand-in."""
    if "spandrel" in sys.modules and sys.modules["spandrel"] is not None:
        return sys.modules["spandrel"]
    if "spandrel" in sys.modules or _torchvision_works():
        import spandrel  # a None entry raises ImportError here, as Python does

        return spandrel
    try:
        with torchvision_stand_in():
            import spandrel
    except BaseException:
        _forget_spandrel()
        raise
    return spandrel
