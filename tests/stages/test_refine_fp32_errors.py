"""The per-patch fp32 error against HR that the refinement's ``drop`` loss is scaled by."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from srdeploy.calib.refine import refine
from srdeploy.recipe import RefineSection
from srdeploy.stages.refine import fp32_errors


def test_fp32_errors_compare_each_clipped_output_with_its_hr_crop() -> None:
    up = nn.Upsample(scale_factor=2, mode="nearest")
    lr = np.random.default_rng(0).uniform(0, 1, (20, 3, 4, 4)).astype(np.float32)
    hr = up(torch.from_numpy(lr)).permute(0, 2, 3, 1).numpy().copy()  # NHWC, as sr_patches gives it
    hr[5] += 0.1  # one patch off by 0.1 everywhere
    hr[7, :, :, 2] = 0.0  # one patch with its blue channel lost
    err = fp32_errors(up, lr, hr, chunk=6)  # several chunks, the last one short
    want = np.zeros(20, np.float32)
    want[5] = 0.01
    want[7] = float((lr[7, 2] ** 2).mean()) / 3
    np.testing.assert_allclose(err, want, atol=1e-6)
    # outputs are clipped to [0, 1] like a saved image: an output above 1 is 1
    assert fp32_errors(up, lr + 1.0, np.ones_like(hr)).max() == pytest.approx(0.0, abs=1e-12)


def test_drop_loss_needs_an_error_for_every_patch() -> None:
    rc = RefineSection(steps=1, loss="drop")
    with pytest.raises(ValueError, match="needs fp32's error against HR for every patch"):
        refine(nn.Identity(), None, np.zeros((4, 3, 8, 8), np.float32), rc, "trt", fp32_err=np.ones(3))  # type: ignore[arg-type]
