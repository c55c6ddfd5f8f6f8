import numpy as np
import pytest
import torch

from srdeploy.quant.grid import fp16_representable, qrange
from srdeploy.quant.spec import symmetric_spec, unsigned_spec


@pytest.mark.parametrize("bits", range(2, 9))
@pytest.mark.parametrize("signed", [True, False])
def test_round_trip_error_at_most_half_a_step_inside_range(bits: int, signed: bool) -> None:
    rng = np.random.default_rng(bits)
    spec = symmetric_spec(3.0, bits) if signed else unsigned_spec(-1.0, 2.0, bits)
    lo, hi = spec.clip_bounds()
    x = rng.uniform(float(lo), float(hi), 10_000).astype(np.float32)
    err = np.abs(spec.fake_quant(x) - x)
    assert err.max() <= float(spec.scale) / 2 * (1 + 1e-5)


@pytest.mark.parametrize("bits", range(2, 9))
def test_values_outside_are_clipped_to_the_grid_ends(bits: int) -> None:
    spec = unsigned_spec(-1.0, 2.0, bits)
    lo, hi = spec.clip_bounds()
    y = spec.fake_quant(np.array([-100.0, 100.0], np.float32))
    assert y[0] == pytest.approx(float(lo)) and y[1] == pytest.approx(float(hi))
    q = spec.quantize(np.array([-100.0, 100.0], np.float32))
    assert q.min() == 0 and q.max() == 2**bits - 1


@pytest.mark.parametrize("bits", range(2, 8))
def test_emulated_values_stay_inside_the_b_bit_range_of_an_int8_container(bits: int) -> None:
    spec = symmetric_spec(1.0, bits)
    q = spec.quantize(np.linspace(-5, 5, 1001).astype(np.float32))
    lo, hi = qrange(bits, signed=True)
    assert q.min() == lo and q.max() == hi
    assert lo >= -128 and hi <= 127
    zero_based = unsigned_spec(0.0, 1.0, bits)
    q = zero_based.quantize(np.linspace(-1, 5, 1001).astype(np.float32))
    assert int(zero_based.zero_point) == 0 and q.min() == 0 and q.max() == 2**bits - 1 <= 127


def test_narrow_weights_never_use_the_most_negative_level() -> None:
    spec = symmetric_spec(np.array([1.0, 2.0]), 8, axis=0, narrow=True)
    q = spec.quantize(np.array([[-9.0, 1.0], [-9.0, 2.0]], np.float32))
    assert q.min() == -127


def test_torch_and_numpy_agree_per_channel() -> None:
    spec = symmetric_spec(np.array([0.5, 1.0, 2.0]), 4, axis=0, narrow=True)
    w = np.random.default_rng(0).normal(size=(3, 2, 3, 3)).astype(np.float32)
    a = spec.fake_quant(w)
    b = spec.fake_quant_torch(torch.from_numpy(w)).numpy()
    np.testing.assert_array_equal(a, b)


def test_scales_are_float16_representable() -> None:
    s = fp16_representable(np.array([0.0123456, 1e-9], np.float32))
    assert np.all(s.astype(np.float16).astype(np.float32) == s)
    assert s[1] > 0


def test_unsigned_grid_represents_zero_exactly() -> None:
    spec = unsigned_spec(-0.37, 1.91, 8)
    assert spec.fake_quant(np.zeros(1, np.float32))[0] == 0.0


def test_with_bits_keeps_the_range() -> None:
    spec = unsigned_spec(-1.0, 3.0, 8).with_bits(4)
    assert spec.bits == 4
    lo, hi = spec.clip_bounds()
    step = float(spec.scale)
    assert float(lo) == pytest.approx(-1.0, abs=step) and float(hi) == pytest.approx(3.0, abs=step)
