"""The recipe's ``calib`` section: where the calibration inputs come from (srdeploy/data/calib_inputs.py cuts them).

Three sources: HR images downscaled by bicubic (``degradation: bicubic``, the default), low-resolution images used
as they are (``degradation: none``), or model-input tensors from a ``.npy``/``.npz`` file (``tensors``). Only the
first has HR behind each patch; ``has_hr`` says so, and steps that need HR refuse the others (recipe.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from srdeploy.recipe_sections import _Section


class CalibSection(_Section):
    set: str | None = Field(None, min_length=1, description="named image set in calib_data/ (unset: train)")
    folder: str | None = Field(None, min_length=1, description="folder of images (instead of set)")
    degradation: Literal["bicubic", "none"] | None = Field(
        None, description="bicubic (unset): images are HR, patches come from their bicubic downscale; none: LR images"
    )
    tensors: str | None = Field(
        None, min_length=1, description=".npy/.npz of model inputs (N,3,H,W float in [0,1] or N,H,W,3 uint8)"
    )
    patches: int = Field(64, ge=1, le=100_000)
    patch_size: int = Field(48, ge=8, le=1024, description="LR patch size")
    batch_size: int = Field(8, ge=1, le=1024)
    time_budget_s: float | None = Field(None, gt=0, description="calibration + refinement seconds (refinement stops)")

    @model_validator(mode="after")
    def _one_source(self) -> CalibSection:
        if self.tensors is None:
            return self
        for key in ("set", "folder"):
            if getattr(self, key) is not None:
                raise ValueError(f"set calib.tensors or calib.{key}, not both (write {key}: null to drop it)")
        if self.degradation == "bicubic":
            raise ValueError("calib.tensors are model inputs (LR) already: drop calib.degradation or set it to none")
        return self

    @property
    def has_hr(self) -> bool:
        """Whether each calibration patch has the HR image behind it (bicubic-downscaled images only)."""
        return self.tensors is None and self.degradation != "none"

    @property
    def source(self) -> str:
        """The tensors file, folder or named set the patches come from."""
        return self.tensors or self.folder or self.set or "train"
