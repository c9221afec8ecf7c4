"""Hamerly bounds: the same labels as plain Lloyd, with fewer searches and sum updates."""

import naive
import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris, make_blobs

import fastseg
from fastseg.cluster import kernels
from fastseg.cluster.step import Bounds


def bounded_pass(X, w, centers, labels, bounds, full=True, search_all=False):
    nb = kernels.n_blocks(X.shape[0])
    k, d = centers.shape
    sums, weights, stats = np.empty((nb, k, d)), np.empty((nb, k)), np.empty((nb, 2))
    kernels.assign_accumulate_bounded(
        X,
        w,
        centers,
        bounds.half_gap,
        bounds.drift_max,
        labels,
        bounds.lower,
        sums,
        weights,
        stats,
        full,
        search_all,
    )
    return sums, weights, stats


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, k, d", [(1, 1, 1), (500, 3, 2), (9000, 8, 5)])
def test_bounded_kernel_matches_the_reference_over_iterations(dtype, n, k, d):
    rng = np.random.default_rng(n + k + d)
    X = rng.standard_normal((n, d)).astype(dtype)
    w = rng.random(n) + 0.5
    centers = X[rng.choice(n, size=k)].astype(np.float64) + 0.01
    labels = np.full(n, -1, dtype=np.int32)
    bounds = Bounds(n, k)
    modes = [
        (True, True),
        (False, False),
        (True, False),
        (False, False),
        (True, True),
        (False, False),
        (False, False),
    ]  # (full sums, search every row)
    for full, search_all in modes:
        expect_labels, expect_sums, expect_w, _ = naive.assign_accumulate(X, w, centers, labels)
        sums, weights, _ = bounded_pass(X, w, centers, labels, bounds, full, search_all)
        assert np.array_equal(labels, expect_labels)
        if full:
            total_sums, total_w = sums.sum(0), weights.sum(0)
        else:  # the blocks hold only the moves: added to the last totals they give the sums
            total_sums, total_w = total_sums + sums.sum(0), total_w + weights.sum(0)
        np.testing.assert_allclose(total_sums, expect_sums.sum(0), rtol=1e-9, atol=1e-8)
        np.testing.assert_allclose(total_w, expect_w.sum(0), rtol=1e-12, atol=1e-9)
        # the bounds really bound the distances
        d2 = naive.sq_distances(X, centers)
        if k > 1:
            d2[np.arange(n), labels] = np.inf
            other = np.sqrt(d2.min(axis=1))
            slack = kernels.BOUND_MARGIN * (other + bounds.drift_max)
            assert (bounds.lower_bounds() <= other + slack).all()
        new = np.where(
            total_w[:, None] > 0, total_sums / np.maximum(total_w, 1e-300)[:, None], centers
        )
        bounds.update(centers, new)
        centers = new


def test_bounds_spare_the_search_of_rows_deep_inside_their_cluster():
    X, _ = make_blobs(20_000, n_features=4, centers=5, random_state=1)
    km = fastseg.KMeans(5, random_state=0, algorithm="lloyd", max_iter=3).fit(X)
    centers = km.cluster_centers_.astype(np.float64)
    labels = np.full(X.shape[0], -1, dtype=np.int32)
    bounds = Bounds(X.shape[0], 5)
    w = np.ones(X.shape[0])
    bounded_pass(X, w, centers, labels, bounds, search_all=True)
    bounds.update(centers, centers)  # nothing moved: rows far from a boundary need no search
    own = np.sqrt(naive.sq_distances(X, centers)[np.arange(X.shape[0]), labels])
    far = np.argmax(bounds.lower_bounds() - own)  # the row deepest inside its cluster
    bounds.lower[:] += 1e-3  # a mark: a searched row gets its bound recomputed, losing it
    bounds.lower[far - 1] = -1.0  # a bound that fails: this row must be searched
    before = bounds.lower.copy()
    bounded_pass(X, w, centers, labels, bounds, full=False)
    kept = bounds.lower == before
    assert kept[far] and not kept[far - 1]
    assert kept.mean() > 0.9  # converged centres: most rows skip the search


def datasets():
    blobs32 = make_blobs(30_000, n_features=8, centers=8, cluster_std=4.0, random_state=0)[
        0
    ].astype(np.float32)
    blobs64 = make_blobs(10_000, n_features=3, centers=4, random_state=2)[0]
    return {
        "blobs32": blobs32,
        "blobs64": blobs64,
        "iris": load_iris().data,
        "digits": load_digits().data,
        "duplicates": np.repeat(blobs64[:50], 40, axis=0),
    }


@pytest.mark.parametrize("name", list(datasets()))
@pytest.mark.parametrize("tol", [0.0, 1e-4])
def test_hamerly_equals_lloyd(name, tol):
    X = datasets()[name]
    for seed in range(2):
        runs = [
            fastseg.KMeans(8, random_state=seed, tol=tol, algorithm=a).fit(X)
            for a in ("lloyd", "hamerly")
        ]
        a, b = runs
        assert np.array_equal(a.labels_, b.labels_)
        np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-9, atol=1e-9)
        assert b.inertia_ == pytest.approx(a.inertia_, rel=1e-12) and a.n_iter_ == b.n_iter_


def test_hamerly_with_weights_empty_clusters_and_threads():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((6000, 2))
    init = np.vstack([X[:3], [[50.0, 50.0], [60.0, -60.0]]])  # two centres start far away
    w = rng.integers(0, 4, size=6000).astype(float)
    runs = [
        fastseg.KMeans(5, init=init, algorithm=a, n_threads=t, tol=0).fit(X, sample_weight=w)
        for a, t in (("lloyd", 1), ("hamerly", 1), ("hamerly", 2))
    ]
    for other in runs[1:]:
        assert np.array_equal(other.labels_, runs[0].labels_)
        np.testing.assert_allclose(other.cluster_centers_, runs[0].cluster_centers_, rtol=1e-12)
    assert np.array_equal(runs[1].cluster_centers_, runs[2].cluster_centers_)  # thread count
    assert len(np.unique(runs[0].labels_)) == 5


def test_forced_hamerly_on_spilled_data_matches_in_memory(tmp_path):
    X = make_blobs(20_000, n_features=4, centers=6, random_state=3)[0].astype(np.float32)
    ram = fastseg.KMeans(6, random_state=0, algorithm="hamerly").fit(X)
    spilled = fastseg.KMeans(
        6,
        random_state=0,
        algorithm="hamerly",
        scale="standard",
        memory_budget=1000,
        spill_dir=tmp_path,
    ).fit(X)
    plain = fastseg.KMeans(6, random_state=0, algorithm="lloyd", scale="standard").fit(X)
    assert np.array_equal(spilled.labels_, plain.labels_)
    np.testing.assert_allclose(spilled.cluster_centers_, plain.cluster_centers_, rtol=1e-6)
    assert ram.inertia_ > 0 and list(tmp_path.iterdir()) == []
