"""Sample positions: the rows NumPy's plain recipe picks, found faster."""

import numpy as np
import pytest

from fastseg.io.store import _distinct_sorted, sample_positions


@pytest.mark.parametrize("n", [1, 7, 1000, 65_536, 65_537, 10**7, 2**40])
@pytest.mark.parametrize("size", [1, 5, 3000])
def test_distinct_sorted_values_are_numpys_unique(n, size):
    """By the mask over the rows (n <= 4 x size) or by 16-bit digits, repeats dropped."""
    values = np.random.default_rng(n + size).integers(0, n, size)
    got = _distinct_sorted(values, n)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, np.unique(values))


@pytest.mark.parametrize(
    "n, size", [(12, 10), (40, 10), (41, 10), (10**6, 250_000), (10**6 + 1, 250_000)]
)
def test_sample_positions_are_those_of_numpys_plain_recipe(n, size):
    """``np.sort`` of ``choice`` up to 4 x size rows, else distinct draws topped up: the same
    positions as ever, which saved profiles and Dask fits (each fragment its share) rely on."""
    for seed in (0, 3):
        rng = np.random.default_rng(seed)
        if n <= 4 * size:
            expected = np.sort(rng.choice(n, size, replace=False))
        else:
            expected = np.unique(rng.integers(0, n, size))
            while expected.size < size:
                expected = np.union1d(expected, rng.integers(0, n, size - expected.size))
        np.testing.assert_array_equal(sample_positions(n, size, seed), expected)
