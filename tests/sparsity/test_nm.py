"""N:M masks and the pattern checker (TensorRT layout: groups of M consecutive input channels)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from srdeploy.errors import PlanError
from srdeploy.sparsity.nm import density, is_2of4, nm_mask, satisfies, sparse_2of4_weights, violations

PATTERNS = [(1, 2), (1, 4), (2, 4), (3, 4), (4, 4), (1, 8), (2, 8), (4, 8), (8, 16)]
SHAPES = [(8, 16, 3, 3), (3, 16, 1, 1), (16, 32, 5, 5), (1, 16, 9, 9), (64, 48, 3, 3)]


def _weight(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _groups(a: np.ndarray, m: int) -> np.ndarray:
    k, c, r, s = a.shape
    return a.transpose(0, 2, 3, 1).reshape(k, r, s, c // m, m)


@pytest.mark.parametrize("n,m", PATTERNS)
@pytest.mark.parametrize("shape", SHAPES)
def test_mask_pattern_for_every_nm_and_shape(n: int, m: int, shape: tuple[int, ...]) -> None:
    if shape[1] % m:
        pytest.skip("C not a multiple of M (covered by the refusal test)")
    w = _weight(shape)
    keep = nm_mask(w, n, m)
    assert keep.shape == w.shape and keep.dtype == bool
    g_keep = _groups(keep, m)
    assert (g_keep.sum(-1) == n).all()  # exactly N kept in every group
    assert density(keep) == pytest.approx(n / m)
    assert satisfies(np.where(keep, w, 0.0), n, m)
    # magnitude: every kept |w| >= every dropped |w| of the same group
    g_abs = _groups(np.abs(w), m)
    kept_min = np.where(g_keep, g_abs, np.inf).min(-1)
    dropped_max = np.where(g_keep, -np.inf, g_abs).max(-1)
    assert (kept_min >= dropped_max).all()


@pytest.mark.parametrize("c,m", [(6, 4), (3, 4), (12, 8), (20, 16), (5, 2)])
def test_channels_not_divisible_by_m_are_refused(c: int, m: int) -> None:
    w = _weight((8, c, 3, 3))
    with pytest.raises(PlanError, match="not a multiple"):
        nm_mask(w, 1, m)
    assert not satisfies(np.zeros_like(w), 1, m)


def test_checker_rejects_a_violating_weight() -> None:
    w = _weight((8, 16, 3, 3))
    assert not satisfies(w, 2, 4)
    assert violations(w, 2, 4) == 8 * 3 * 3 * 4  # every group of the dense weight breaks 2:4
    pruned = np.where(nm_mask(w, 2, 4), w, 0.0)
    assert satisfies(pruned, 2, 4) and violations(pruned, 2, 4) == 0
    broken = pruned.copy()
    zero_idx = np.argwhere(broken[0, :4, 1, 1] == 0)[0, 0]
    broken[0, zero_idx, 1, 1] = 1.0  # a third non-zero in one group
    assert not satisfies(broken, 2, 4)
    assert violations(broken, 2, 4) == 1
    # the group runs along input channels: 3 non-zeros spread over kernel positions are fine
    along_kernel = np.zeros((1, 4, 3, 3), dtype=np.float32)
    along_kernel[0, 0, :, :] = 1.0
    assert satisfies(along_kernel, 1, 4)


@pytest.mark.parametrize("n,m", [(0, 4), (5, 4), (-1, 2)])
def test_invalid_patterns_are_refused(n: int, m: int) -> None:
    with pytest.raises(PlanError):
        nm_mask(_weight((4, 8, 1, 1)), n, m)


def test_non_conv_weight_is_refused() -> None:
    with pytest.raises(PlanError, match="4-D"):
        nm_mask(np.ones((4, 8), dtype=np.float32), 2, 4)


def test_ties_are_deterministic() -> None:
    w = np.ones((2, 8, 1, 1), dtype=np.float32)
    keep = nm_mask(w, 2, 4)
    assert keep[:, [0, 1, 4, 5]].all() and not keep[:, [2, 3, 6, 7]].any()
    assert (nm_mask(w, 2, 4) == keep).all()


@pytest.mark.parametrize(
    ("n", "m", "c", "expected"),
    [
        (2, 4, 16, True),
        (1, 4, 16, True),  # sparser than 2:4 still runs on sparse tensor cores
        (2, 8, 16, True),  # an aligned group of 4 lies inside one group of 8
        (1, 3, 12, True),  # a group of 4 overlaps at most two groups of 3
        (3, 4, 16, False),
        (2, 4, 6, False),  # C not a multiple of 4 (the mask itself is 1:2-valid on 6 channels)
    ],
)
def test_is_2of4_is_about_the_kept_weights(n: int, m: int, c: int, expected: bool) -> None:
    if c % m:
        keep = np.zeros((8, c, 3, 3), bool)
        keep[:, ::2] = True  # every other channel: 2 of every 4 where groups of 4 exist
    else:
        keep = nm_mask(_weight((8, c, 3, 3), seed=c + n), n, m)
    assert is_2of4(keep) is expected


def test_is_2of4_depends_on_the_choice_for_4_of_8() -> None:
    aligned = np.zeros((1, 8, 1, 1), bool)
    aligned[0, [0, 1, 4, 5]] = True  # 4 of 8, 2 in each half
    skewed = np.zeros((1, 8, 1, 1), bool)
    skewed[0, [0, 1, 2, 3]] = True  # 4 of 8, all in the first half
    assert is_2of4(aligned) and not is_2of4(skewed)
    assert not is_2of4(np.ones((4, 16, 3, 3), bool))  # an all-kept mask is dense, whatever its label


def test_sparse_2of4_weights_lists_only_2of4_masks_sorted() -> None:
    w = _weight((8, 16, 3, 3))
    masks = {
        "z.weight": SimpleNamespace(keep=nm_mask(w, 2, 4)),
        "a.weight": SimpleNamespace(keep=nm_mask(w, 1, 4)),
        "m.weight": SimpleNamespace(keep=nm_mask(w, 3, 4)),
    }
    assert sparse_2of4_weights(masks) == ["a.weight", "z.weight"]
    assert sparse_2of4_weights({}) == []
