"""The per-partition step: totals of partitions merged in order equal one pass over all rows,
and equal the NumPy reference."""

import numpy as np
import pytest
from naive import nearest

from fastseg import config
from fastseg.cluster.reduction import FragmentSums
from fastseg.cluster.step import Totals, Workspace, labelled_inertia, step
from fastseg.config import BLOCK_ROWS
from fastseg.preprocess.stats import MinMax, Moments, PresentValues, first_row_shift


def run_step(X, w, centers, labels):
    totals = Totals(*centers.shape)
    step(X, w, centers, labels, totals, Workspace(*centers.shape, X.shape[0]))
    totals.close_fragment()
    return totals


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_partitions_merged_in_order_equal_one_pass(dtype):
    rng = np.random.default_rng(0)
    # whole numbers: every sum is exact, so the merged totals must equal to the last bit
    X = rng.integers(-50, 50, size=(3 * BLOCK_ROWS + 123, 5)).astype(dtype)
    w = rng.integers(1, 4, size=X.shape[0]).astype(np.float64)
    centers = X[rng.choice(X.shape[0], 6, replace=False)].astype(np.float64)
    whole_labels = np.full(X.shape[0], -1, np.int32)
    whole = run_step(X, w, centers, whole_labels)
    cut = 2 * BLOCK_ROWS + 17  # partitions need not end on a block
    labels = np.full(X.shape[0], -1, np.int32)
    parts = [run_step(X[a:b], w[a:b], centers, labels[a:b]) for a, b in [(0, cut), (cut, None)]]
    merged = Totals(*centers.shape).merge(parts[0]).merge(parts[1])
    np.testing.assert_array_equal(labels, whole_labels)
    np.testing.assert_array_equal(merged.sums, whole.sums)
    np.testing.assert_array_equal(merged.weight_sums, whole.weight_sums)
    assert merged.changed == whole.changed == X.shape[0]
    # against the reference: nearest centres, weighted sums, inertia
    ref, d2 = nearest(X.astype(np.float64), centers)
    np.testing.assert_array_equal(labels, ref)
    for c in range(centers.shape[0]):
        np.testing.assert_allclose(merged.sums[c], (w[ref == c, None] * X[ref == c]).sum(axis=0))
    np.testing.assert_allclose(merged.inertia, w @ d2)
    work = Workspace(*centers.shape, X.shape[0])
    inertia = labelled_inertia(X, w, centers, labels, work, FragmentSums(1)).close()[0]
    np.testing.assert_allclose(inertia, w @ d2)


def test_fragments_summed_apart_and_merged_equal_one_pass_to_the_last_bit(monkeypatch):
    """The summation tree: a pass over all rows closes each fragment's partial at its end, so
    the fragments' totals computed apart (as Dask tasks) and merged in order are the same
    floats, with fractional values (where any other order of additions would differ)."""
    monkeypatch.setattr(config, "FRAGMENT_ROWS", 2 * BLOCK_ROWS)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5 * BLOCK_ROWS + 321, 4)).astype(np.float32) * 1e3
    w = rng.random(X.shape[0]) + 0.5
    centers = X[:5].astype(np.float64)
    work = Workspace(*centers.shape, X.shape[0])
    whole, labels = Totals(*centers.shape), np.full(X.shape[0], -1, np.int32)
    for a in range(0, X.shape[0], 3 * BLOCK_ROWS):  # chunks across fragment ends
        b = a + 3 * BLOCK_ROWS
        step(X[a:b], w[a:b], centers, labels[a:b], whole, work, first_row=a)
    whole.close_fragment()
    merged, inertia = Totals(*centers.shape), FragmentSums(1)
    for a in range(0, X.shape[0], config.FRAGMENT_ROWS):
        b = a + config.FRAGMENT_ROWS
        merged.merge(run_step(X[a:b], w[a:b], centers, labels[a:b].copy()))
        part = labelled_inertia(X[a:b], w[a:b], centers, labels[a:b], work, FragmentSums(1))
        inertia.merge(part.close())
    np.testing.assert_array_equal(merged.sums, whole.sums)
    np.testing.assert_array_equal(merged.weight_sums, whole.weight_sums)
    assert merged.inertia == whole.inertia  # (changed counts differ: those labels were set)
    local = labelled_inertia(X, w, centers, labels, work, FragmentSums(1)).close()
    np.testing.assert_array_equal(inertia.total, local)


def test_statistics_of_fragments_merged_equal_one_pass_to_the_last_bit(monkeypatch):
    monkeypatch.setattr(config, "FRAGMENT_ROWS", 2 * BLOCK_ROWS)
    rng = np.random.default_rng(4)
    X = (rng.normal(size=(5 * BLOCK_ROWS + 99, 3)) * 100 + 7).astype(np.float32)
    w = rng.random(X.shape[0])
    whole = Moments(3)
    for a in range(0, X.shape[0], 3 * BLOCK_ROWS):
        whole.update(X[a : a + 3 * BLOCK_ROWS], w[a : a + 3 * BLOCK_ROWS])
    merged = Moments(3, shift=first_row_shift(X))
    for a in range(0, X.shape[0], config.FRAGMENT_ROWS):
        part = Moments(3, shift=first_row_shift(X))
        part.update(X[a : a + config.FRAGMENT_ROWS], w[a : a + config.FRAGMENT_ROWS])
        merged.merge(part)
    np.testing.assert_array_equal(merged.mean, whole.mean)
    np.testing.assert_array_equal(merged.var, whole.var)


def test_preprocessing_statistics_merge_as_one_pass():
    rng = np.random.default_rng(1)
    X = rng.normal(5, 3, size=(10_000, 4))
    X[rng.random(X.shape) < 0.05] = np.nan
    a, b = X[:3_000], X[3_000:]
    whole, left, right = PresentValues(4), PresentValues(4), PresentValues(4)
    whole.update(X), left.update(a), right.update(b)
    merged = left.merge(right)
    np.testing.assert_allclose(merged.sums, whole.sums)
    np.testing.assert_array_equal(merged.counts, whole.counts)
    Y = np.nan_to_num(X, nan=1.0)
    whole_m, left_m, right_m = Moments(4), Moments(4), Moments(4)
    whole_m.update(Y), left_m.update(Y[:3_000]), right_m.update(Y[3_000:])
    left_m.merge(right_m)
    np.testing.assert_allclose(left_m.mean, Y.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(left_m.var, Y.var(axis=0), rtol=1e-10)
    np.testing.assert_allclose(left_m.var, whole_m.var, rtol=1e-10)
    lo, hi = MinMax(4), MinMax(4)
    lo.update(a), hi.update(b)
    lo.merge(hi)
    np.testing.assert_array_equal(lo.low, np.nanmin(X, axis=0))
    np.testing.assert_array_equal(lo.high, np.nanmax(X, axis=0))


def test_covariance_and_category_levels_merge_as_one_pass():
    import polars as pl

    from fastseg.errors import DataError
    from fastseg.preprocess.stats import CategoryLevels, Covariance

    rng = np.random.default_rng(2)
    X = rng.normal(0, 2, size=(9_000, 3)).astype(np.float32)
    w = rng.random(9_000)
    mean = X.astype(np.float64).mean(axis=0)
    whole, left, right = Covariance(mean), Covariance(mean), Covariance(mean)
    whole.update(X, w)
    left.update(X[:BLOCK_ROWS], w[:BLOCK_ROWS])  # parts split on a block: the same blocks
    right.update(X[BLOCK_ROWS:], w[BLOCK_ROWS:])
    merged = left.merge(right)
    np.testing.assert_allclose(merged.covariance, whole.covariance, rtol=1e-12)
    centred = X - mean
    np.testing.assert_allclose(
        whole.covariance, (centred * w[:, None]).T @ centred / w.sum(), rtol=1e-9
    )
    a = pl.DataFrame({"region": ["n", "s", None], "vip": [True, True, False]})
    b = pl.DataFrame({"region": ["w", "n", "n"], "vip": [True, True, True]})
    levels = CategoryLevels(["region", "vip"])
    levels.update(a)
    other = CategoryLevels(["region", "vip"])
    other.update(b)
    assert levels.merge(other).levels() == {"region": ["n", "s", "w"], "vip": [False, True]}
    with pytest.raises(DataError, match="has no values"):
        CategoryLevels(["x"]).levels()
