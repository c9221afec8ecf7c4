"""Property tests (hypothesis): random shapes, duplicate rows, n close to k, extreme
magnitudes, float32 and float64. The kernels agree with the NumPy references, the estimators
never crash and keep Lloyd's invariants, the metrics agree with scikit-learn."""

import naive
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

import fastseg
from fastseg import metrics
from fastseg.cluster import kernels
from fastseg.errors import DataError

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def datasets(draw, min_rows=1):
    """(X, k): rows drawn from a small pool (so duplicates happen), scaled by 1e-3 to 1e6."""
    n = draw(st.integers(min_rows, 300))
    d = draw(st.integers(1, 6))
    pool = draw(st.integers(1, n))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3, 1e6]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((pool, d)) * scale + rng.standard_normal(d) * scale
    X = base[rng.integers(0, pool, n)].astype(dtype)
    k = draw(st.integers(1, min(n, 8)))
    return X, k


@SETTINGS
@given(datasets(), st.integers(0, 1000))
def test_assign_matches_numpy(data, seed):
    X, k = data
    rng = np.random.default_rng(seed)
    centers = X[rng.integers(0, X.shape[0], k)].astype(np.float64)
    centers += rng.standard_normal(centers.shape) * (np.abs(centers).max() + 1) * 1e-3
    labels, dist = np.empty(X.shape[0], np.int32), np.empty(X.shape[0])
    kernels.assign(X, centers, labels, dist)
    want_labels, want_dist = naive.nearest(X, centers)
    d2 = naive.sq_distances(X, centers)
    # a label may differ only on an exact tie (up to rounding) between two centres
    chosen = d2[np.arange(X.shape[0]), labels]
    assert np.allclose(chosen, want_dist, rtol=1e-9, atol=1e-12 * (1 + want_dist.max()))
    np.testing.assert_allclose(dist, want_dist, rtol=1e-9, atol=1e-12 * (1 + want_dist.max()))
    assert ((labels == want_labels) | np.isclose(chosen, want_dist, rtol=1e-9)).all()


@SETTINGS
@given(datasets(), st.sampled_from(["lloyd", "hamerly"]))
def test_kmeans_keeps_lloyds_invariants(data, algorithm):
    X, k = data
    km = fastseg.KMeans(k, random_state=0, algorithm=algorithm, tol=0, max_iter=300)
    distinct = len(np.unique(X, axis=0))
    if distinct < k:  # a segment would hold nobody: a clear error instead
        with pytest.raises(DataError, match=f"only {distinct} distinct rows"):
            km.fit(X)
        return
    km.fit(X)
    assert km.labels_.shape == (X.shape[0],)
    assert km.labels_.min() >= 0 and km.labels_.max() < k
    assert np.isfinite(km.cluster_centers_).all() and km.inertia_ >= 0
    centers = km.cluster_centers_.astype(np.float64)
    d2 = naive.sq_distances(X, centers)
    own = d2[np.arange(X.shape[0]), km.labels_]
    assert km.inertia_ == np.float64(km.inertia_)
    np.testing.assert_allclose(km.inertia_, own.sum(), rtol=1e-6, atol=1e-9 * (1 + own.max()))
    # each row sits with a nearest centre (ties and float32 centres allow rounding)
    slack = 1e-5 * (1 + d2.max()) if X.dtype == np.float32 else 1e-9 * (1 + d2.max())
    assert (own <= d2.min(axis=1) + slack).all()
    np.testing.assert_array_equal(km.predict(X), km.labels_)


@SETTINGS
@given(datasets(min_rows=3))
def test_minibatch_never_crashes(data):
    X, k = data
    mb = fastseg.MiniBatchKMeans(k, random_state=0, batch_size=32, max_iter=3).fit(X)
    assert mb.labels_.shape == (X.shape[0],) and np.isfinite(mb.cluster_centers_).all()


@SETTINGS
@given(datasets(min_rows=3), st.integers(0, 1000))
def test_metrics_match_scikit_learn(data, seed):
    X, _ = data
    # Centred, because scikit-learn's distances use |x|² - 2x·y + |y|², whose rounding grows
    # with |x|: on raw rows of magnitude 1e6 its distance between identical rows is ~0.03,
    # and its Davies-Bouldin index of identical clusters comes out 1 where fastseg's exact
    # differences give 0. Centring changes none of the scores, only that rounding.
    X = X.astype(np.float64)
    X -= X.mean(axis=0)
    rng = np.random.default_rng(seed)
    n_labels = int(rng.integers(2, X.shape[0]))
    labels = rng.permutation(np.arange(X.shape[0]) % n_labels)
    if len(np.unique(labels)) < 2:
        return
    # The index is a ratio of between- to within-cluster dispersion: where the latter is
    # tiny (duplicated rows of magnitude 1e-3 gave 45,921), both libraries' float64 rounding
    # of it shows (5e-7 apart in that example).
    np.testing.assert_allclose(
        metrics.calinski_harabasz_score(X, labels),
        skm.calinski_harabasz_score(X, labels),
        rtol=2e-6,
        atol=1e-9,
    )
    centroids = np.array([X[labels == c].mean(axis=0) for c in np.unique(labels)])
    gaps = np.sqrt(((centroids[:, None] - centroids[None]) ** 2).sum(-1))
    scale = 1e-9 * (1 + np.abs(X).max())
    if (gaps[np.triu_indices(len(centroids), 1)] > scale).all():
        # (two coinciding centroids make scikit-learn's index depend on its rounding)
        np.testing.assert_allclose(
            metrics.davies_bouldin_score(X, labels),
            skm.davies_bouldin_score(X, labels),
            rtol=1e-7,
            atol=1e-9,
        )
    else:
        assert np.isfinite(metrics.davies_bouldin_score(X, labels))
    ours, theirs = metrics.silhouette_samples(X, labels), skm.silhouette_samples(X, labels)
    # A row whose own and nearest-other mean distances are both 0 (duplicates) has 0/0:
    # 0 for both libraries in exact arithmetic, but scikit-learn's rounding can make it -1.
    codes = np.unique(labels, return_inverse=True)[1].astype(np.int32)
    counts = np.bincount(codes).astype(np.float64)
    own, other = np.empty(len(X)), np.empty(len(X))
    metrics.silhouette_means(X, codes, counts, own, other)
    clear = np.nan_to_num(np.maximum(own, other)) > scale
    np.testing.assert_allclose(ours[clear], theirs[clear], rtol=1e-6, atol=1e-6)
    assert (ours[~clear] == 0).all()
