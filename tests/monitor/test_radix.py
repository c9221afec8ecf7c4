"""The radix sort of float32 columns against ``np.sort``: sizes, ties, signed zeros, infinities,
extreme magnitudes and denormals, NaN dropped, values that differ in few digits, and random
arrays."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fastseg.monitor import radix, reference

TINY = np.finfo(np.float32).smallest_subnormal
HUGE = np.finfo(np.float32).max


def _check(values):
    values = np.asarray(values, dtype=np.float32)
    got = radix.sorted_float32(values)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, np.sort(values[~np.isnan(values)]).astype(np.float64))
    return got


@pytest.mark.parametrize("n", [0, 1, 2, 1000, 250_000])
def test_random_normal_values_of_any_size(n):
    rng = np.random.default_rng(n)
    _check(rng.standard_normal(n) * 100)


def test_ties_and_equal_values():
    rng = np.random.default_rng(1)
    _check(rng.integers(-5, 6, 10_000))  # eleven values, each a thousand times
    _check(rng.gamma(2.0, 3.0, 10_000).round())
    _check(np.full(1000, 3.25))
    _check(np.full(7, -0.5))


def test_signed_zeros_and_infinities():
    values = [0.0, -0.0, np.inf, -np.inf, 1.0, -1.0, -0.0, np.inf, 0.0, -np.inf]
    got = _check(values)
    assert got[0] == -np.inf and got[-1] == np.inf
    assert np.all(got[4:6] == 0.0)


def test_extreme_magnitudes_and_denormals():
    values = [HUGE, -HUGE, TINY, -TINY, 2 * TINY, -3 * TINY, 1e-38, -1e-38, 1e-30, 1e30, 0.0]
    _check(values)
    rng = np.random.default_rng(2)
    _check(rng.standard_normal(5000) * TINY * 1000)  # all denormal (or zero)
    _check(np.ldexp(rng.standard_normal(5000), rng.integers(-140, 120, 5000)))


def test_negative_values_only():
    rng = np.random.default_rng(3)
    _check(-np.abs(rng.standard_normal(10_000)) - 1e-3)
    _check(-np.arange(1, 3000, dtype=np.float32))


def test_nan_is_dropped():
    nans = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFFFFFFF], np.uint32).view(np.float32)
    values = np.concatenate([nans, np.float32([2.0, -1.0, np.inf]), nans])
    np.testing.assert_array_equal(radix.sorted_float32(values), [-1.0, 2.0, np.inf])
    assert radix.sorted_float32(nans).size == 0


@pytest.mark.parametrize(
    "values",
    [
        [1.5] * 5,  # every digit the same
        [1.0, 4.0, 0.5, 2.0, 64.0],  # powers of two: only the top digit differs
        np.arange(0, 300),  # whole numbers: the low mantissa bits are zero
        -np.arange(1, 300),
        np.linspace(-1, 1, 1001),
    ],
)
def test_values_that_differ_in_few_digits(values):
    values = np.asarray(values, dtype=np.float32)
    _check(values[np.random.default_rng(4).permutation(values.size)])


def test_strided_and_read_only_columns():
    rows = np.random.default_rng(5).standard_normal((2000, 3)).astype(np.float32)
    _check(rows[:, 1])  # a column of row-major rows
    rows.flags.writeable = False
    _check(rows[:, 2])
    column = rows[:, 0].copy()
    column.flags.writeable = False
    _check(column)


def test_only_float32_is_taken():
    with pytest.raises(TypeError):
        radix.sorted_float32(np.zeros(3))


def test_the_kernel_releases_the_gil():
    assert radix._sorted_bits.targetoptions["nogil"]


@pytest.mark.parametrize("n", [4, reference.RADIX_MIN + 3])  # NumPy's sort, then the radix
def test_the_profile_sorts_both_widths(n):
    values = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    values[1] = np.nan
    expected = np.sort(values[~np.isnan(values)]).astype(np.float64)
    for column in (values, values.astype(np.float64)):
        got = reference._sorted_present(column)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, expected)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float32, st.integers(0, 400), elements=st.floats(width=32, allow_nan=False)))
def test_any_float32_array_sorts_as_numpy_does(values):
    _check(values)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=5),
    st.lists(st.integers(0, 4), max_size=300),
)
def test_few_distinct_values_sort_as_numpy_does(pool, picks):
    values = np.float32(pool)[[p % len(pool) for p in picks]]
    _check(values)
