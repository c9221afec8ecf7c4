"""The drift measures against hand computations and SciPy on full samples."""

import numpy as np
import pytest
from scipy import stats

from fastseg.monitor import measures


def test_psi_by_hand_and_empty_bins():
    expected, actual = np.array([0.5, 0.3, 0.2]), np.array([0.4, 0.4, 0.2])
    by_hand = (0.4 - 0.5) * np.log(0.4 / 0.5) + (0.4 - 0.3) * np.log(0.4 / 0.3)
    assert measures.psi(expected, actual) == pytest.approx(by_hand)
    assert measures.psi_terms(expected, actual).sum() == pytest.approx(by_hand)
    # an empty bin counts as EPSILON of the rows, not as infinitely far
    with_empty = measures.psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2])
    eps = measures.EPSILON
    assert with_empty == pytest.approx(
        2 * (0.4 - 0.5) * np.log(0.4 / 0.5) + (0.2 - eps) * np.log(0.2 / eps)
    )
    assert measures.psi(expected, expected) == 0.0


def test_bins_follow_the_edges_with_ties_merged():
    values = np.array([0, 0, 0, 0, 0, 0, 1, 2, 3, 4], dtype=np.float64)
    edges = measures.sorted_decile_edges(np.sort(values))
    assert np.all(np.diff(edges) > 0)  # six zeros: one edge at 0, not six
    counts = measures.bin_counts(edges, values)
    naive = np.zeros(edges.size + 1, dtype=int)
    for v in values:  # bin i holds edges[i-1] < v <= edges[i]; the outer bins are open
        naive[sum(v > e for e in edges)] += 1
    assert counts.tolist() == naive.tolist()
    beyond = measures.bin_counts(edges, np.array([-5.0, 100.0]))
    assert beyond[0] == 1 and beyond[-1] == 1


def test_jensen_shannon_bounds():
    assert measures.jensen_shannon([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert measures.jensen_shannon([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0)
    p, q = np.array([0.2, 0.8]), np.array([0.6, 0.4])
    m = (p + q) / 2
    by_hand = np.sqrt((stats.entropy(p, m, base=2) + stats.entropy(q, m, base=2)) / 2)
    assert measures.jensen_shannon(p, q) == pytest.approx(by_hand)


def test_wasserstein_from_quantiles_is_near_scipy_on_full_samples():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 200_000), rng.normal(0.3, 1.2, 200_000)
    quantiles = np.quantile(a, measures.quantile_levels())
    exact = stats.wasserstein_distance(a, b)
    assert measures.wasserstein(quantiles, b) == pytest.approx(exact, rel=0.02)
    assert measures.wasserstein(quantiles, a) < 0.01


def test_ks_statistic_is_the_largest_gap_at_the_decile_edges():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 100_000), rng.normal(0.05, 1, 100_000)
    edges = measures.sorted_decile_edges(np.sort(a))
    ref = measures.shares(measures.bin_counts(edges, a))
    d, p = measures.ks_test(ref, measures.bin_counts(edges, b), a.size)
    by_hand = max(abs(np.mean(a <= e) - np.mean(b <= e)) for e in edges)
    assert d == pytest.approx(by_hand)
    assert d <= stats.ks_2samp(a, b).statistic  # a lower bound of the gap anywhere
    assert p < 1e-6  # a twentieth of a std is "significant" at this n
    _, p_small = measures.ks_test(ref, measures.bin_counts(edges, b[:500]), a.size)
    assert p_small > 1000 * p  # the same shift, fewer rows
    # whole numbers (ties at the edges): the same distribution gives no gap to speak of
    ages, later = rng.integers(18, 80, 200_000), rng.integers(18, 80, 200_000)
    edges = measures.sorted_decile_edges(np.sort(ages.astype(float)))
    ref = measures.shares(measures.bin_counts(edges, ages))
    _, p_ages = measures.ks_test(ref, measures.bin_counts(edges, later), ages.size)
    assert p_ages > 0.001


def test_chi2_test_matches_scipy():
    ref, new = np.array([500, 300, 200, 0]), np.array([480, 330, 190, 0])
    table = np.array([ref[:3], new[:3]])
    assert measures.chi2_test(ref, new) == pytest.approx(
        stats.chi2_contingency(table, correction=False).pvalue
    )


@pytest.mark.parametrize("n", [1, 2, 3, 10, 1001, 250_000])
@pytest.mark.parametrize("ties", [False, True])
def test_quantiles_and_bins_of_sorted_values_are_numpys(n, ties):
    """The reference profile's shortcuts on sorted values give NumPy's figures exactly."""
    rng = np.random.default_rng(n)
    values = rng.integers(0, 5, n).astype(float) if ties else rng.standard_normal(n)
    values = np.sort(values)
    for levels in (measures.DECILES, measures.quantile_levels(), [0.0, 0.5, 1.0]):
        np.testing.assert_array_equal(
            measures.sorted_quantiles(values, levels), np.quantile(values, levels)
        )
    edges = measures.sorted_decile_edges(values)
    np.testing.assert_array_equal(
        measures.sorted_bin_counts(edges, values), measures.bin_counts(edges, values)
    )


@pytest.mark.parametrize("n", [1, 2, 3, 10, 1001])
@pytest.mark.parametrize("ties", [False, True])
def test_quantiles_of_values_partitioned_at_their_ranks_are_numpys(n, ties):
    """Values sorted only at ``quantile_ranks`` (the profile's segment distances) give
    NumPy's quantiles exactly, as sorted ones do."""
    rng = np.random.default_rng(n)
    values = rng.integers(0, 5, n).astype(float) if ties else rng.standard_normal(n)
    for levels in ((0.5, 0.9, 0.95, 0.99), measures.DECILES, [0.0, 0.5, 1.0]):
        part = np.partition(values, measures.quantile_ranks(n, levels))
        np.testing.assert_array_equal(
            measures.sorted_quantiles(part, levels), np.quantile(values, levels)
        )
