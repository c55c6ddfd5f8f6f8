"""calib.tensors files (srdeploy/data/tensors.py): what is accepted, and one clear DataError for the rest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from srdeploy.data.tensors import load_tensors
from srdeploy.errors import DataError


def _float(n: int = 3, h: int = 20, w: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3, h, w), dtype=np.float32)


def test_npy_float_nchw_is_returned_as_is(tmp_path: Path) -> None:
    x = _float()
    np.save(tmp_path / "c.npy", x)
    got = load_tensors(tmp_path / "c.npy")
    assert got.dtype == np.float32 and np.array_equal(got, x)


def test_float64_is_converted_to_float32(tmp_path: Path) -> None:
    x = _float().astype(np.float64)
    np.save(tmp_path / "c.npy", x)
    got = load_tensors(tmp_path / "c.npy")
    assert got.dtype == np.float32 and np.allclose(got, x)


def test_uint8_nhwc_becomes_nchw_in_unit_range(tmp_path: Path) -> None:
    x = np.random.default_rng(1).integers(0, 256, (2, 10, 12, 3), dtype=np.uint8)
    np.save(tmp_path / "c.npy", x)
    got = load_tensors(tmp_path / "c.npy")
    assert got.shape == (2, 3, 10, 12)
    assert np.allclose(got[1, 2, 4, 5], x[1, 4, 5, 2] / 255.0)


def test_npz_single_array_under_any_name(tmp_path: Path) -> None:
    x = _float()
    np.savez(tmp_path / "c.npz", lr=x)
    assert np.array_equal(load_tensors(tmp_path / "c.npz"), x)


def test_npz_picks_the_model_input_name(tmp_path: Path) -> None:
    x, other = _float(seed=1), _float(seed=2)
    np.savez(tmp_path / "c.npz", other=other, input=x)
    assert np.array_equal(load_tensors(tmp_path / "c.npz"), x)


def _write(tmp_path: Path, case: str) -> Path:
    if case == "npz without input":
        np.savez(tmp_path / "c.npz", a=_float(), b=_float())
        return tmp_path / "c.npz"
    if case == "empty npz":
        np.savez(tmp_path / "c.npz")
        return tmp_path / "c.npz"
    if case == "pickled objects":
        np.save(tmp_path / "c.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
        return tmp_path / "c.npy"
    if case == "not numpy":
        (tmp_path / "c.npy").write_text("hello")
        return tmp_path / "c.npy"
    if case == "wrong suffix":
        np.save(tmp_path / "c.npy", _float())
        return (tmp_path / "c.npy").rename(tmp_path / "c.bin")
    if case == "missing":
        return tmp_path / "nothing.npy"
    arrays = {
        "3 dimensions": _float()[0],
        "4 channels": np.random.default_rng(0).random((2, 4, 8, 8), dtype=np.float32),
        "float nhwc": _float().transpose(0, 2, 3, 1).copy(),
        "uint8 nchw": np.zeros((2, 3, 8, 8), np.uint8),
        "out of range": _float() * 255,
        "negative": _float() - 0.5,
        "nan": np.where(_float() > 0.5, np.nan, 0.2).astype(np.float32),
        "empty": np.zeros((0, 3, 8, 8), np.float32),
        "integer": np.zeros((2, 3, 8, 8), np.int32),
    }
    np.save(tmp_path / "c.npy", arrays[case])
    return tmp_path / "c.npy"


BAD = {
    "npz without input": "none named 'input'",
    "empty npz": "holds no arrays",
    "pickled objects": "cannot read calib.tensors",
    "not numpy": "cannot read calib.tensors",
    "wrong suffix": "not a .npy or .npz file",
    "missing": "not found",
    "3 dimensions": "need 4 dimensions",
    "4 channels": "3 (RGB) channels",
    "float nhwc": "3 (RGB) channels",
    "uint8 nchw": "(N, H, W, 3)",
    "out of range": "outside [0, 1]",
    "negative": "outside [0, 1]",
    "nan": "NaN",
    "empty": "it is empty",
    "integer": "need float in [0, 1] or uint8",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_tensors_name_the_problem(tmp_path: Path, case: str) -> None:
    path = _write(tmp_path, case)
    with pytest.raises(DataError) as err:
        load_tensors(path)
    assert BAD[case] in str(err.value) and "\n" not in str(err.value)
