"""init="k-means||": the candidate draw and weighting against a NumPy reference, invariance to
chunk size and threads, sample weights, and quality against k-means++."""

import naive
import numpy as np
import pyarrow.compute as pc
import pytest
from numba import get_num_threads, set_num_threads
from sklearn.datasets import make_blobs

import fastseg
from fastseg.cluster import initialization
from fastseg.config import BLOCK_ROWS as B
from fastseg.datasets import generate_batch


def _chunks(X, w, chunk_rows):
    """A ``Dataset.chunks`` stand-in over arrays, chunks of ``chunk_rows`` (a multiple of B)."""

    def chunks():
        for start in range(0, X.shape[0], chunk_rows):
            yield start, X[start : start + chunk_rows], w[start : start + chunk_rows]

    return chunks


def _candidates(X, w, k, chunk_rows=B, seed=3, **kw):
    return initialization.kmeans_parallel_candidates(
        _chunks(X, w, chunk_rows), X.shape[0], X.shape[1], k, seed, **kw
    )


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(3 * B + 123, n_features=4, centers=7, cluster_std=1.5, random_state=1)
    return X


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_candidate_weights_match_the_reference(blobs, dtype):
    X = blobs.astype(dtype)
    w = np.random.default_rng(0).uniform(0.0, 3.0, X.shape[0])
    points, weights = _candidates(X, w, 5)
    assert points.shape[0] > 5  # about 1 + 5 rounds x 2k
    expected, _ = naive.candidate_weights(X, w, points)
    np.testing.assert_allclose(weights, expected, rtol=1e-12)
    assert weights.sum() == pytest.approx(w.sum(), rel=1e-12)
    # candidates are rows of the data
    rows = {tuple(r) for r in X.astype(np.float64)}
    assert all(tuple(p) in rows for p in points)


def test_incremental_cost_is_the_distance_to_the_nearest_candidate(blobs):
    w = np.ones(blobs.shape[0])
    cands = initialization._Candidates(_chunks(blobs, w, 2 * B), *blobs.shape)
    phi = cands.add(blobs[[0, 5]])
    phi = cands.add(blobs[[10, 500, 7000]])
    expected, dist = naive.candidate_weights(blobs, w, cands.points)
    np.testing.assert_allclose(cands.cost, dist, rtol=1e-12)
    np.testing.assert_array_equal(cands.labels, naive.nearest(blobs, cands.points)[0])
    assert phi == pytest.approx(dist.sum(), rel=1e-12)
    np.testing.assert_allclose(cands.weights(), expected, rtol=1e-12)


def test_candidates_do_not_depend_on_chunk_size_or_threads(blobs):
    w = np.random.default_rng(1).uniform(0.5, 2.0, blobs.shape[0])
    ref = _candidates(blobs, w, 6, chunk_rows=B)
    old = get_num_threads()
    try:
        for chunk_rows, threads in [(2 * B, old), (4 * B, 1), (B, 2), (4 * B, 2)]:
            set_num_threads(min(threads, old))
            got = _candidates(blobs, w, 6, chunk_rows=chunk_rows)
            np.testing.assert_array_equal(got[0], ref[0])
            np.testing.assert_array_equal(got[1], ref[1])
    finally:
        set_num_threads(old)


def test_integer_weights_weigh_candidates_as_repeated_rows(blobs):
    X = blobs[: 2 * B + 50]
    counts = np.random.default_rng(2).integers(0, 4, X.shape[0])
    points, weights = _candidates(X, counts.astype(np.float64), 4)

    def weigh(Xs, ws):
        cands = initialization._Candidates(_chunks(Xs, ws, B), *Xs.shape)
        cands.add(points)
        return cands.weights()

    repeated = np.repeat(X, counts, axis=0)
    np.testing.assert_array_equal(weigh(repeated, np.ones(repeated.shape[0])), weights)
    np.testing.assert_array_equal(weigh(X, counts.astype(np.float64)), weights)
    # zero-weight rows are never drawn
    assert not any((points == r).all(axis=1).any() for r in X[counts == 0])


@pytest.mark.parametrize("Est", [fastseg.KMeans, fastseg.MiniBatchKMeans])
def test_estimators_same_model_for_any_batch_size_and_threads(blobs, Est):
    X = blobs.astype(np.float32)
    ref = Est(5, init="k-means||", random_state=0, n_threads=1, batch_size=B).fit(X)
    for kw in [dict(n_threads=2, batch_size=B), dict(batch_size=3 * B)]:
        other = Est(5, init="k-means||", random_state=0, **kw).fit(X)
        if Est is fastseg.KMeans:  # mini-batch's steps follow batch_size; its init must not
            np.testing.assert_array_equal(other.cluster_centers_, ref.cluster_centers_)
            np.testing.assert_array_equal(other.labels_, ref.labels_)
    centres = [
        initialization.kmeans_parallel(
            _chunks(X, np.ones(X.shape[0]), c), *X.shape, 5, np.random.RandomState(0)
        )
        for c in (B, 3 * B)
    ]
    np.testing.assert_array_equal(centres[0], centres[1])
    assert ref.get_params()["init"] == "k-means||"


def test_spilled_rows_give_the_same_model(blobs, tmp_path):
    X = blobs.astype(np.float32)
    ram = fastseg.KMeans(5, init="k-means||", random_state=0, batch_size=B).fit(X)
    spilled = fastseg.KMeans(
        5, init="k-means||", random_state=0, batch_size=B, memory_budget=1000, spill_dir=tmp_path
    ).fit(X)
    np.testing.assert_array_equal(spilled.cluster_centers_, ram.cluster_centers_)


def test_saved_model_keeps_the_init_string(blobs, tmp_path):
    est = fastseg.KMeans(3, init="k-means||", random_state=0).fit(blobs)
    est.save(tmp_path / "m.json")
    assert fastseg.load(tmp_path / "m.json").get_params()["init"] == "k-means||"


def test_sample_weight_equals_repeated_rows_in_the_fit():
    X, _ = make_blobs(3000, n_features=3, centers=4, cluster_std=0.3, random_state=2)
    counts = np.random.default_rng(4).integers(1, 3, X.shape[0])
    a = fastseg.KMeans(4, init="k-means||", random_state=0).fit(X, sample_weight=counts)
    b = fastseg.KMeans(4, init="k-means||", random_state=0).fit(np.repeat(X, counts, axis=0))
    # different draws (rows are numbered differently), same clustering of well-separated blobs
    np.testing.assert_allclose(a.inertia_, b.inertia_, rtol=1e-6)


def _customers(n, seed):
    table = generate_batch(n, seed=seed, null_fraction=0.0)
    cols = ["age", "income", "monthly_charge", "tenure_months", "spending_score"]
    X = np.column_stack([pc.cast(table[c], "float64").to_numpy() for c in cols])
    return (X - X.mean(axis=0)) / X.std(axis=0)


def test_inertia_no_worse_than_kmeans_plusplus():
    X = _customers(20_000, seed=11)
    inertia = {}
    for init in ("k-means++", "k-means||"):
        inertia[init] = np.mean(
            [fastseg.KMeans(8, init=init, random_state=s).fit(X).inertia_ for s in range(10)]
        )
    assert inertia["k-means||"] <= 1.01 * inertia["k-means++"], inertia


# ----- edge cases --------------------------------------------------------------------------
def test_one_cluster(blobs):
    w = np.ones(blobs.shape[0])
    c = initialization.kmeans_parallel(
        _chunks(blobs, w, B), *blobs.shape, 1, np.random.RandomState(0)
    )
    # Lloyd on the candidates puts the one centre at their weighted mean
    seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
    points, weights = _candidates(blobs, w, 1, seed=seed)
    np.testing.assert_allclose(c[0], np.average(points, axis=0, weights=weights), rtol=1e-12)
    est = fastseg.KMeans(1, init="k-means||", random_state=0, max_iter=1).fit(blobs)
    np.testing.assert_allclose(est.cluster_centers_[0], blobs.mean(axis=0), atol=1e-6)


@pytest.mark.parametrize("n", [6, 7, 9])
def test_n_close_to_k_gives_distinct_rows(n):
    X = np.random.default_rng(n).normal(size=(n, 3))
    c = initialization.kmeans_parallel(
        _chunks(X, np.ones(n), B), n, 3, 6, np.random.RandomState(0), n_rounds=1
    )
    assert np.unique(c, axis=0).shape[0] == 6
    est = fastseg.KMeans(6, init="k-means||", random_state=0).fit(X)
    assert np.unique(est.labels_).size == 6


def test_fewer_distinct_rows_than_clusters_repeat_them():
    X = np.repeat(np.eye(3), 5, axis=0)  # 3 distinct rows, 15 rows
    c = initialization.kmeans_parallel(
        _chunks(X, np.ones(15), B), 15, 3, 5, np.random.RandomState(0)
    )
    assert c.shape == (5, 3)
    assert np.unique(c, axis=0).shape[0] == 3
    points, weights = _candidates(X, np.ones(15), 5)
    assert np.unique(points[weights > 0], axis=0).shape[0] == 3
    assert weights.sum() == 15 and np.all(weights[weights > 0] == 5)


def test_duplicate_rows_are_weighed_once():
    X = np.repeat(np.random.default_rng(5).normal(size=(40, 2)), 3, axis=0)
    points, weights = _candidates(X, np.ones(X.shape[0]), 4)
    kept = points[weights > 0]
    assert np.unique(kept, axis=0).shape[0] == kept.shape[0]
    expected, _ = naive.candidate_weights(X, np.ones(X.shape[0]), points)
    np.testing.assert_array_equal(weights, expected)


def test_zero_weights_are_never_candidates(blobs):
    w = np.zeros(blobs.shape[0])
    w[::7] = 1.0
    points, weights = _candidates(blobs, w, 5)
    allowed = {tuple(r) for r in blobs[::7]}
    assert all(tuple(p) in allowed for p in points)


@pytest.mark.parametrize("bad", ["k-means+++", "kmeans||"])
def test_unknown_init_string_is_rejected(blobs, bad):
    with pytest.raises(ValueError, match="init"):
        fastseg.KMeans(3, init=bad).fit(blobs)


def test_the_fit_command_seeds_with_k_means_parallel(tmp_path, capsys):
    import json

    import polars as pl

    from fastseg.cli import main

    X, _ = make_blobs(3000, n_features=3, centers=4, random_state=5)
    path, model_path = tmp_path / "b.parquet", tmp_path / "m.json"
    pl.DataFrame(X, schema=["a", "b", "c"]).write_parquet(path)
    argv = ["fit", str(path), "--k", "4", "--features", "a,b,c", "--init", "k-means||"]
    assert main([*argv, "--model", str(model_path), "--quiet"]) == 0
    doc = json.loads(model_path.read_text())
    assert doc["params"]["init"] == "k-means||"
    same = fastseg.KMeans(4, init="k-means||", random_state=0, scale="standard", missing="drop")
    same.fit(path, columns=["a", "b", "c"])
    ours = np.asarray(doc["cluster_centers"])  # numbered by size: compare as sets of rows
    theirs = np.asarray(same.cluster_centers_, dtype=np.float64)
    np.testing.assert_allclose(ours[np.lexsort(ours.T)], theirs[np.lexsort(theirs.T)], rtol=1e-6)
