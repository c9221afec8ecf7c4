"""fastseg.metrics against scikit-learn's functions, and its kernels against NumPy."""

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_iris, make_blobs

from fastseg import metrics
from fastseg.errors import DataError


def blobs(n=600, d=4, k=5, dtype=np.float64, seed=0):
    X, y = make_blobs(n, n_features=d, centers=k, cluster_std=2.0, random_state=seed)
    return X.astype(dtype), y


def cases():
    X, y = blobs()
    iris = load_iris()
    X32, y32 = blobs(n=900, d=3, k=4, dtype=np.float32, seed=1)
    return {
        "blobs": (X, y),
        "iris": (iris.data, iris.target),
        "float32": (X32, y32),
        "string labels": (X, np.array(["a", "b", "c", "d", "e"])[y]),
        "singletons": (X[:50], np.r_[np.zeros(47, int), 1, 2, 3]),
        "unused codes": (X, y * 10 + 3),
    }


@pytest.mark.parametrize("name", list(cases()))
def test_scores_equal_scikit_learns(name):
    X, y = cases()[name]
    # scikit-learn computes float32 data in float32; fastseg always in float64
    rtol, atol = (1e-5, 1e-6) if X.dtype == np.float32 else (1e-10, 1e-12)
    assert metrics.silhouette_score(X, y) == pytest.approx(skm.silhouette_score(X, y), rel=rtol)
    np.testing.assert_allclose(
        metrics.silhouette_samples(X, y), skm.silhouette_samples(X, y), rtol=rtol, atol=atol
    )
    assert metrics.davies_bouldin_score(X, y) == pytest.approx(
        skm.davies_bouldin_score(X, y), rel=rtol
    )
    assert metrics.calinski_harabasz_score(X, y) == pytest.approx(
        skm.calinski_harabasz_score(X, y), rel=rtol
    )


@pytest.mark.parametrize("seed", [0, 7])
def test_sampled_silhouette_draws_the_rows_scikit_learn_draws(seed):
    X, y = blobs(n=2000)
    ours = metrics.silhouette_score(X, y, sample_size=300, random_state=seed)
    theirs = skm.silhouette_score(X, y, sample_size=300, random_state=seed)
    assert ours == pytest.approx(theirs, rel=1e-10)
    assert ours != pytest.approx(metrics.silhouette_score(X, y), rel=1e-6)  # really a sample


def test_silhouette_kernel_matches_numpy():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((70, 3))
    codes = rng.integers(0, 4, 70)
    counts = np.bincount(codes, minlength=4).astype(float)
    own, other = np.empty(70), np.empty(70)
    metrics.silhouette_means(X, codes, counts, own, other)
    dist = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    for i in range(70):
        c = codes[i]
        assert own[i] == pytest.approx(dist[i, codes == c].sum() / (counts[c] - 1), rel=1e-12)
        means = [dist[i, codes == o].mean() for o in range(4) if o != c]
        assert other[i] == pytest.approx(min(means), rel=1e-12)


def test_label_stats_do_not_depend_on_chunks():
    X, y = blobs(n=20_000, d=3, k=4)
    whole = metrics.LabelStats(3, 4)
    whole.add_sums(X, y)
    whole.add_dispersion(X, y)
    parts = metrics.LabelStats(3, 4)
    for s in range(0, 20_000, 8192):  # chunks of whole blocks, as the streaming passes use
        parts.add_sums(X[s : s + 8192], y[s : s + 8192])
    for s in range(0, 20_000, 8192):
        parts.add_dispersion(X[s : s + 8192], y[s : s + 8192])
    assert parts.calinski_harabasz() == whole.calinski_harabasz()
    assert parts.davies_bouldin() == whole.davies_bouldin()


def test_degenerate_clusterings_score_as_scikit_learn():
    X = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0]]), 10, axis=0)
    y = np.repeat([0, 1], 10)
    assert metrics.davies_bouldin_score(X, y) == skm.davies_bouldin_score(X, y) == 0.0
    assert metrics.calinski_harabasz_score(X, y) == skm.calinski_harabasz_score(X, y) == 1.0


@pytest.mark.parametrize(
    "X, y, needle",
    [
        (np.zeros((5, 2)), np.zeros(5), "Number of labels is 1"),
        (np.arange(10.0).reshape(5, 2), np.arange(5), "Number of labels is 5"),
        (np.array([[0.0, np.nan], [1, 1], [2, 2]]), [0, 1, 1], "NaN"),
        (np.zeros((4, 2)), [0, 1], "2 labels for 4 rows"),
        (np.zeros(4), [0, 1, 0, 1], "2-D"),
    ],
)
def test_bad_input_is_a_clear_error(X, y, needle):
    for score in (
        metrics.silhouette_score,
        metrics.davies_bouldin_score,
        metrics.calinski_harabasz_score,
    ):
        with pytest.raises(DataError, match=needle):
            score(X, y)


def test_other_metrics_are_refused():
    X, y = blobs()
    with pytest.raises(DataError, match="euclidean"):
        metrics.silhouette_score(X, y, metric="cosine")


# ----- score_model: a fitted model over data of any size -------------------------------------
def fitted(X):
    import fastseg

    return fastseg.KMeans(4, random_state=0, scale="standard").fit(X)


def test_score_model_equals_the_in_memory_scores():
    X, _ = blobs(n=5000, d=3, k=4)
    model = fitted(X)
    scaled = (X - model.scale_mean_) / model.scale_std_
    labels = model.predict(X)
    got = metrics.score_model(model, X, sample_size=10_000, random_state=0)
    assert got["n_rows"] == 5000 and sum(got["sample_sizes"]) == 5000  # everything sampled
    assert got["inertia"] == pytest.approx(model.inertia_, rel=1e-9)
    assert got["calinski_harabasz"] == pytest.approx(
        skm.calinski_harabasz_score(scaled, labels), rel=1e-10
    )
    assert got["davies_bouldin"] == pytest.approx(
        skm.davies_bouldin_score(scaled, labels), rel=1e-10
    )
    assert got["silhouette"] == pytest.approx(skm.silhouette_score(scaled, labels), rel=1e-9)


def test_score_model_streams_parquet_and_leaves_out_null_rows(tmp_path):
    import polars as pl

    X, _ = blobs(n=30_000, d=3, k=4)
    frame = pl.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2]})
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) % 100 == 0).then(None).otherwise(pl.col("a")).alias("a")
    )
    path = tmp_path / "d.parquet"
    frame.write_parquet(path, row_group_size=4000)
    import fastseg

    model = fastseg.KMeans(4, random_state=0, missing="drop").fit(path, columns=["a", "b", "c"])
    got = metrics.score_model(model, path, sample_size=2000, random_state=1)
    kept = frame.drop_nulls()
    assert got["n_rows"] == kept.height == 29_700
    labels, kept = model.predict(kept), kept.to_numpy()
    assert got["calinski_harabasz"] == pytest.approx(
        skm.calinski_harabasz_score(kept, labels), rel=1e-9
    )
    assert got["davies_bouldin"] == pytest.approx(skm.davies_bouldin_score(kept, labels), rel=1e-9)
    assert got["silhouette"] == pytest.approx(skm.silhouette_score(kept, labels), abs=0.03)
    again = metrics.score_model(model, path, sample_size=2000, random_state=1)
    assert again == got  # the sample is reproducible


def test_stratified_sample_keeps_small_segments():
    counts = np.array([100_000, 50_000, 30])
    quotas = metrics.stratified_quotas(counts, 1000)
    assert quotas.tolist() == [667, 333, 30]  # the 30-row segment is sampled whole
    assert metrics.stratified_quotas([10, 10], 1000).tolist() == [10, 10]


def test_score_model_fills_as_the_fit_did():
    import polars as pl

    X, _ = blobs(n=3000, d=3, k=3)
    frame = pl.DataFrame(X, schema=["a", "b", "c"]).with_columns(
        pl.when(pl.int_range(pl.len()) % 10 == 0).then(None).otherwise(pl.col("a")).alias("a")
    )
    import fastseg

    model = fastseg.KMeans(3, random_state=0, missing="mean").fit(frame)
    assert metrics.score_model(model, frame)["n_rows"] == 3000  # null rows filled, not dropped
