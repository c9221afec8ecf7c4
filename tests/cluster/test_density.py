"""HDBSCAN on a sample: the sample's labels against scikit-learn's HDBSCAN on the same rows,
every other row against a brute-force nearest stored point, noise as a segment of its own,
the model file and ``fastseg fit --algorithm hdbscan``."""

import json

import numpy as np
import polars as pl
import pytest
import sklearn.cluster
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.utils._param_validation import InvalidParameterError

import fastseg
from fastseg.cli import main
from fastseg.cluster.density import HDBSCANEngine, stratified
from fastseg.cluster.density_estimator import HDBSCAN
from fastseg.errors import DataError, FastsegError, ModelFileError


def blobs_with_noise(n=2000, d=3, centers=4, n_noise=150, seed=0):
    """Blobs plus uniform noise over a box wider than them (the noise rows come last)."""
    X, _ = make_blobs(n, n_features=d, centers=centers, cluster_std=0.7, random_state=seed)
    rng = np.random.default_rng(seed)
    noise = rng.uniform(X.min(axis=0) - 3, X.max(axis=0) + 3, (n_noise, d))
    return np.vstack([X, noise])


def scikit_learns(points, model, min_samples=10):
    """scikit-learn's HDBSCAN labels of ``points``, numbered as the model numbers them."""
    raw = (
        sklearn.cluster.HDBSCAN(
            min_cluster_size=model.min_cluster_size_, min_samples=min_samples, copy=False
        )
        .fit(points.astype(np.float64))
        .labels_
    )
    return np.where(raw < 0, model.n_clusters - 1, raw)


def brute_nearest(X, points):
    """(index of the nearest point, squared distance to it) of each row, by NumPy."""
    squared = ((X[:, None, :].astype(np.float64) - points[None, :, :]) ** 2).sum(axis=2)
    return squared.argmin(axis=1), squared.min(axis=1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("min_cluster_size, min_samples", [(None, None), (25, 5)])
def test_the_sample_is_labelled_as_scikit_learn_labels_it(dtype, min_cluster_size, min_samples):
    X = blobs_with_noise().astype(dtype)
    model = HDBSCAN(
        min_cluster_size, min_samples=min_samples, sample_size=900, max_stored=900, random_state=0
    ).fit(X)
    assert model.n_sample_rows_ == 900 and model.stored_points_.shape == (900, 3)
    sample = model.stored_points_  # max_stored >= the sample: all of it, in row order
    assert np.isin(sample.astype(dtype), X).all()
    expected = scikit_learns(sample, model, min_samples)
    assert np.array_equal(model.stored_labels_, expected)
    assert model.noise_segment_ == model.n_clusters - 1  # noise numbered after the clusters
    assert model.min_cluster_size_ == (min_cluster_size or max(5, round(0.005 * 900)))


def test_all_rows_fitting_the_sample_get_scikit_learns_labels():
    X = blobs_with_noise(n=1200, n_noise=100, seed=2)
    model = HDBSCANEngine(random_state=0).fit(X)
    assert model.n_sample_rows_ == X.shape[0]
    assert np.array_equal(model.labels_, scikit_learns(X, model))
    assert model.inertia_ == 0.0  # every row is a stored point


def test_every_row_takes_its_nearest_stored_points_label():
    X = blobs_with_noise(n=3000, n_noise=200, seed=1).astype(np.float32)
    model = HDBSCAN(sample_size=800, max_stored=150, random_state=0).fit(X)
    points, labels = model.stored_points_, model.stored_labels_
    assert points.shape[0] <= 150
    assert (np.bincount(labels, minlength=model.n_clusters) > 0).all()  # each segment kept
    nearest, squared = brute_nearest(X, points)
    assert np.array_equal(model.labels_, labels[nearest])
    assert np.array_equal(model.predict(X), model.labels_)
    assert model.inertia_ == pytest.approx(squared.sum(), rel=1e-9)
    assert -model.score(X) == pytest.approx(model.inertia_, rel=1e-9)
    new = np.random.default_rng(5).normal(scale=8, size=(300, 3)).astype(np.float32)
    assert np.array_equal(model.predict(new), labels[brute_nearest(new, points)[0]])


def test_noise_is_a_segment_of_its_own():
    X = blobs_with_noise(n=2000, n_noise=300, seed=3)
    model = HDBSCANEngine(random_state=0).fit(X)
    noise = model.noise_segment_
    assert noise == model.n_clusters - 1 and model.n_clusters >= 4
    sizes = np.bincount(model.labels_, minlength=model.n_clusters)
    assert sizes[noise] > 0 and (sizes > 0).all()
    raw = sklearn.cluster.HDBSCAN(
        min_cluster_size=model.min_cluster_size_, min_samples=model.min_samples, copy=False
    ).fit(X)
    raw = raw.labels_
    assert np.array_equal(model.labels_ == noise, raw == -1)  # scikit-learn's noise, kept
    far = brute_nearest(X[2000:], X[:2000])[1] > 9.0  # most rows far from every blob
    assert far.sum() > 50 and (model.labels_[2000:][far] == noise).mean() > 0.9
    centre = X[model.labels_ == noise].mean(axis=0)  # all rows are the sample here
    np.testing.assert_allclose(model.cluster_centers_[noise], centre)


def test_stored_points_are_drawn_label_by_label():
    labels = np.repeat(np.arange(4, dtype=np.int32), [5000, 300, 7, 1])
    keep = stratified(labels, 4, 1000, np.random.RandomState(0))
    kept = np.bincount(labels[keep], minlength=4)
    assert keep.size <= 1000 and np.all(np.diff(keep) > 0)
    assert (kept >= 1).all() and kept[0] > kept[1] > kept[2] >= kept[3]
    assert np.array_equal(stratified(labels[:900], 4, 1000, None), np.arange(900))


def test_save_load_predict(tmp_path):
    X = blobs_with_noise(n=2000, n_noise=150, seed=4).astype(np.float32)
    model = HDBSCAN(sample_size=1000, max_stored=300, scale="standard", random_state=0).fit(X)
    path = tmp_path / "hdbscan.json"
    model.save(path)
    loaded = fastseg.load(path)
    assert type(loaded).__name__ == "HDBSCAN" and loaded.n_clusters == model.n_clusters
    assert loaded.noise_segment_ == model.noise_segment_
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert np.array_equal(loaded.predict(X), model.labels_)
    doc = json.loads(path.read_text())
    doc["density"]["labels"][0] = model.n_clusters  # no such segment
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match="stored labels"):
        fastseg.load(path)


def test_fastseg_fit_end_to_end(tmp_path):
    X = blobs_with_noise(n=2500, n_noise=200, seed=5)
    data = tmp_path / "customers.parquet"
    pl.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2]}).write_parquet(data)
    model, labels = tmp_path / "model.json", tmp_path / "labels.parquet"
    argv = ["fit", data, "--k", "3", "--features", "a,b,c", "--algorithm", "hdbscan"]
    argv += ["--model", model, "--labels", labels, "--quiet"]
    assert main([str(a) for a in argv]) == 0
    doc = json.loads(model.read_text())
    assert doc["estimator"] == "HDBSCAN" and "requested_k" not in doc["params"]
    loaded = fastseg.load(model)
    assert loaded.n_clusters == len(doc["cluster_centers"]) == 5  # found: 4 blobs and noise
    written = pl.read_parquet(labels)["segment"].to_numpy()
    assert np.array_equal(written, loaded.predict(pl.read_parquet(data)))
    sizes = np.bincount(written, minlength=loaded.n_clusters)
    assert np.all(np.diff(sizes) <= 0)  # numbered largest first, noise included
    assert sizes[loaded.noise_segment_] == sizes.min()


def test_a_larger_data_set_is_fitted_on_a_sample(monkeypatch):
    seen = []
    fit = sklearn.cluster.HDBSCAN.fit

    def spy(self, X, y=None):
        seen.append(X.shape)
        return fit(self, X, y)

    monkeypatch.setattr(sklearn.cluster.HDBSCAN, "fit", spy)
    X = blobs_with_noise(n=5000, n_noise=300, seed=6).astype(np.float32)
    model = HDBSCANEngine(sample_size=700, random_state=0).fit(X)
    assert seen == [(700, 3)] and model.n_sample_rows_ == 700
    assert model.labels_.shape == (5300,) and model.min_cluster_size_ == 5
    again = HDBSCANEngine(sample_size=700, random_state=0).fit(X)
    assert np.array_equal(again.labels_, model.labels_)  # the seed draws the same sample


def test_what_it_refuses():
    X = blobs_with_noise(n=300, n_noise=20)
    with pytest.raises(DataError, match="no sample weights"):
        HDBSCANEngine().fit(X, sample_weight=np.ones(X.shape[0]))
    with pytest.raises(FastsegError, match="one machine"):
        HDBSCANEngine().fit(X, backend="dask")
    with pytest.raises(DataError, match="more rows than min_samples"):
        HDBSCANEngine(min_samples=50, sample_size=20).fit(X)
    with pytest.raises(InvalidParameterError, match="min_cluster_size"):
        HDBSCAN(min_cluster_size=1).fit(X)
    assert clone(HDBSCAN(40, max_stored=99)).get_params()["max_stored"] == 99


def test_without_noise_there_is_no_noise_segment(tmp_path):
    X, _ = make_blobs(2500, n_features=3, centers=4, cluster_std=0.7, random_state=5)
    model = HDBSCANEngine(requested_k=3, random_state=0).fit(X)
    assert model.noise_segment_ is None and model.n_clusters == 4  # found, not the 3 asked
    assert np.array_equal(model.labels_, scikit_learns(X, model))
    model.save(tmp_path / "m.json")
    loaded = fastseg.load(tmp_path / "m.json")
    assert loaded.noise_segment_ is None and np.array_equal(loaded.predict(X), model.labels_)
