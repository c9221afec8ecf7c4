"""fastseg.KMeans and fastseg.MiniBatchKMeans: against scikit-learn, the naive Lloyd, each other,
and across inputs (arrays, polars, Arrow, Parquet), threads, batch sizes and memory budgets."""

import json
import os
from pathlib import Path

import naive
import numpy as np
import polars as pl
import pytest
from sklearn import datasets
from sklearn.base import clone
from sklearn.cluster import KMeans as SKKMeans
from sklearn.cluster import MiniBatchKMeans as SKMiniBatchKMeans
from sklearn.cluster import kmeans_plusplus
from sklearn.datasets import make_blobs
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import (
    check_dont_overwrite_parameters,
    check_estimators_overwrite_params,
    parametrize_with_checks,
)
from threadpoolctl import threadpool_limits

import fastseg
from fastseg.cluster.modelfile import load_engine
from fastseg.io import store as fs_dataset
from fastseg.io.store import sample_positions

B = fastseg.config.BLOCK_ROWS


def _blobs(n, d, k, dtype=np.float64, seed=0, **kw):
    X, y = make_blobs(n, n_features=d, centers=k, random_state=seed, **kw)
    return X.astype(dtype), y


def _sk(k, init, **kw):
    kw.setdefault("tol", 0.0)
    return SKKMeans(k, init=init, n_init=1, algorithm="lloyd", **kw)


def _rtol(dtype):
    return 1e-6 if np.dtype(dtype) == np.float64 else 1e-4


def _assert_same_fit(a, b):
    """Bit-identical fitted models."""
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.cluster_centers_.dtype == b.cluster_centers_.dtype
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.inertia_ == b.inertia_
    assert a.n_iter_ == b.n_iter_


def _assert_matches_sklearn(fs, sk, X, n_iter_slack=0):
    np.testing.assert_array_equal(fs.labels_, sk.labels_)
    np.testing.assert_allclose(fs.inertia_, sk.inertia_, rtol=_rtol(X.dtype))
    scale = float(np.abs(X).max())
    np.testing.assert_allclose(
        fs.cluster_centers_,
        sk.cluster_centers_,
        rtol=_rtol(X.dtype),
        atol=_rtol(X.dtype) * 1e-2 * scale,
    )
    assert abs(fs.n_iter_ - sk.n_iter_) <= n_iter_slack


# ----- KMeans vs scikit-learn ------------------------------------------------------------------
@pytest.mark.parametrize("tol", [0.0, 1e-4])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n, d, k", [(500, 2, 3), (2000, 5, 8), (9000, 3, 5), (B + 1, 8, 4)])
def test_kmeans_matches_sklearn_on_blobs(n, d, k, dtype, tol):
    X, _ = _blobs(n, d, k, dtype, seed=1, cluster_std=2.0)
    init, _ = kmeans_plusplus(X, k, random_state=0)
    fs = fastseg.KMeans(k, init=init, tol=tol, max_iter=300).fit(X)
    sk = _sk(k, init, tol=tol, max_iter=300).fit(X)
    _assert_matches_sklearn(fs, sk, X)
    assert fs.cluster_centers_.dtype == dtype


@pytest.mark.parametrize("max_iter", [1, 2, 3])
def test_kmeans_matches_sklearn_when_stopped_by_max_iter(max_iter):
    X, _ = _blobs(1500, 4, 6, seed=2, cluster_std=3.0)
    init = X[:6]
    fs = fastseg.KMeans(6, init=init, tol=0, max_iter=max_iter).fit(X)
    sk = _sk(6, init, max_iter=max_iter).fit(X)
    _assert_matches_sklearn(fs, sk, X)
    assert fs.n_iter_ == max_iter


REAL = [datasets.load_iris, datasets.load_wine, datasets.load_breast_cancer, datasets.load_digits]


def _first_distinct_rows(X, k):
    _, idx = np.unique(X, axis=0, return_index=True)
    return X[np.sort(idx)[:k]]


@pytest.mark.parametrize("init_kind", ["first", "k-means++"])
@pytest.mark.parametrize("k", [3, 8])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loader", REAL, ids=lambda f: f.__name__)
def test_kmeans_matches_sklearn_on_real_data(loader, dtype, k, init_kind):
    X = loader().data.astype(dtype)
    if init_kind == "first":
        init = _first_distinct_rows(X, k)
    else:
        init, _ = kmeans_plusplus(X, k, random_state=0)
    fs = fastseg.KMeans(k, init=init, tol=0, max_iter=300).fit(X)
    sk = _sk(k, init, max_iter=300).fit(X)
    # scikit-learn keeps float32 centres in float32 (fastseg accumulates in float64); on iris
    # (duplicate rows, 1-decimal values) that rounding can flip a label for one intermediate
    # iteration, so float32 runs may take one iteration more or less with the same end result.
    _assert_matches_sklearn(fs, sk, X, n_iter_slack=0 if dtype == np.float64 else 1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kmeans_matches_naive_lloyd(dtype):
    X, _ = _blobs(2500, 3, 5, dtype, seed=4, cluster_std=2.5)
    init = X[:5].astype(np.float64)
    fs = fastseg.KMeans(5, init=init, tol=0, max_iter=50).fit(X)
    centers, labels, inertia, n_iter = naive.lloyd(X, init, max_iter=50)
    np.testing.assert_array_equal(fs.labels_, labels)
    np.testing.assert_allclose(fs.cluster_centers_, centers.astype(dtype), rtol=1e-6)
    np.testing.assert_allclose(fs.inertia_, inertia, rtol=1e-10)
    assert fs.n_iter_ == n_iter


# ----- sample weights ----------------------------------------------------------------------
def test_integer_weights_equal_repeated_rows():
    X, _ = _blobs(400, 3, 4, seed=5, cluster_std=2.0)
    w = np.random.default_rng(0).integers(1, 5, X.shape[0])
    init = X[[0, 50, 100, 150]]
    weighted = fastseg.KMeans(4, init=init, tol=0).fit(X, sample_weight=w)
    repeated = fastseg.KMeans(4, init=init, tol=0).fit(np.repeat(X, w, axis=0))
    np.testing.assert_array_equal(np.repeat(weighted.labels_, w), repeated.labels_)
    np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_, rtol=1e-12)
    np.testing.assert_allclose(weighted.inertia_, repeated.inertia_, rtol=1e-10)
    assert weighted.n_iter_ == repeated.n_iter_


def test_zero_weights_equal_removed_rows():
    X, _ = _blobs(400, 2, 3, seed=6, cluster_std=2.0)
    w = np.random.default_rng(1).integers(0, 3, X.shape[0]).astype(np.float64)
    w[:3] = 1.0
    init = X[:3]
    weighted = fastseg.KMeans(3, init=init, tol=0).fit(X, sample_weight=w)
    kept = fastseg.KMeans(3, init=init, tol=0).fit(X[w > 0], sample_weight=w[w > 0])
    np.testing.assert_array_equal(weighted.labels_[w > 0], kept.labels_)
    np.testing.assert_allclose(weighted.cluster_centers_, kept.cluster_centers_, rtol=1e-12)
    np.testing.assert_allclose(weighted.inertia_, kept.inertia_, rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weights_honoured_in_inertia_and_match_sklearn(dtype):
    X, _ = _blobs(1000, 4, 5, dtype, seed=7, cluster_std=2.0)
    w = np.random.default_rng(2).uniform(0.1, 5.0, X.shape[0])
    init, _ = kmeans_plusplus(X, 5, random_state=0, sample_weight=w)
    fs = fastseg.KMeans(5, init=init, tol=0).fit(X, sample_weight=w)
    sk = _sk(5, init).fit(X, sample_weight=w)
    _assert_matches_sklearn(fs, sk, X)
    _, dist = naive.nearest(X, fs.cluster_centers_.astype(np.float64))
    np.testing.assert_allclose(fs.inertia_, w @ dist, rtol=_rtol(dtype))
    np.testing.assert_allclose(-fs.score(X, sample_weight=w), fs.inertia_, rtol=_rtol(dtype))
    assert fs.score(X, sample_weight=w) != pytest.approx(fs.score(X))


@pytest.mark.parametrize("bad", [[-1.0], [np.nan], "short", "zeros"])
def test_invalid_weights_rejected(bad):
    X, _ = _blobs(50, 2, 2)
    if bad == "short":
        w = np.ones(10)
    elif bad == "zeros":
        w = np.zeros(50)
    else:
        w = np.ones(50)
        w[3] = bad[0]
    with pytest.raises(fastseg.DataError, match="sample_weight"):
        fastseg.KMeans(2).fit(X, sample_weight=w)


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_sparse_weights_with_init_sample(init):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10_000, 2))
    w = np.zeros(10_000)
    w[:20] = 1.0  # valid weights: non-negative, positive sum
    est = fastseg.KMeans(2, init=init, init_size=100, random_state=0).fit(X, sample_weight=w)
    assert np.isfinite(est.cluster_centers_).all()


# ----- dtypes ------------------------------------------------------------------------------
@pytest.mark.parametrize("Est", [fastseg.KMeans, fastseg.MiniBatchKMeans])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(Est, dtype):
    X, _ = _blobs(300, 3, 3, dtype)
    est = Est(3, random_state=0).fit(X)
    assert est.cluster_centers_.dtype == dtype
    assert est.transform(X).dtype == dtype
    assert est.fit_transform(X).dtype == dtype
    assert est.labels_.shape == (300,)


@pytest.mark.parametrize("layout", ["readonly", "fortran", "int"])
def test_array_layouts_accepted(layout, blobs32):
    X = blobs32.astype(np.float64)
    ref = fastseg.KMeans(4, random_state=0).fit(X)
    if layout == "readonly":
        X = X.copy()
        X.setflags(write=False)
    elif layout == "fortran":
        X = np.asfortranarray(X)
    else:
        X = np.round(X * 1000).astype(np.int64)
        ref = fastseg.KMeans(4, random_state=0).fit(X.astype(np.float64))
    est = fastseg.KMeans(4, random_state=0).fit(X)
    _assert_same_fit(est, ref)
    np.testing.assert_array_equal(est.predict(X), ref.labels_)


def test_frames_decode_to_float32(blobs32):
    df = pl.DataFrame(blobs32.astype(np.float64), schema=["a", "b", "c"])
    est = fastseg.KMeans(4, random_state=0).fit(df)
    assert est.cluster_centers_.dtype == np.float32
    assert est.transform(df).dtype == np.float32


# ----- determinism -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fits_for_determinism():
    X, _ = _blobs(5 * B + 77, 4, 6, np.float32, seed=8, cluster_std=2.0)
    return X


@pytest.mark.parametrize("init_size", [None, 2000])
@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_kmeans_same_result_across_threads_and_batch_sizes(fits_for_determinism, init, init_size):
    X = fits_for_determinism
    ref = fastseg.KMeans(6, init=init, random_state=0, n_threads=1, init_size=init_size).fit(X)
    for kw in [
        dict(n_threads=2),
        dict(batch_size=B),
        dict(batch_size=50_000),
        dict(batch_size=B, n_threads=2),
        dict(batch_size=3 * B + 5),
    ]:
        other = fastseg.KMeans(6, init=init, random_state=0, init_size=init_size, **kw).fit(X)
        _assert_same_fit(ref, other)


def test_kmeans_same_random_state_same_result_and_different_seeds_differ(fits_for_determinism):
    X = fits_for_determinism
    a = fastseg.KMeans(6, random_state=5).fit(X)
    b = fastseg.KMeans(6, random_state=np.random.RandomState(5)).fit(X)
    _assert_same_fit(a, b)
    c = fastseg.KMeans(6, random_state=6, max_iter=1).fit(X)
    d = fastseg.KMeans(6, random_state=5, max_iter=1).fit(X)
    assert not np.array_equal(c.cluster_centers_, d.cluster_centers_)


def test_n_init_keeps_the_best_run():
    X, _ = _blobs(1200, 2, 6, seed=9, cluster_std=1.5)
    # The first of the 5 runs uses the same random stream as the single run.
    best = fastseg.KMeans(6, init="random", random_state=0, n_init=5).fit(X)
    single = fastseg.KMeans(6, init="random", random_state=0, n_init=1).fit(X)
    assert best.inertia_ <= single.inertia_
    np.testing.assert_allclose(-best.score(X), best.inertia_, rtol=1e-10)


@pytest.mark.parametrize(
    "Est, SKEst", [(fastseg.KMeans, SKKMeans), (fastseg.MiniBatchKMeans, SKMiniBatchKMeans)]
)
@pytest.mark.parametrize("init", ["k-means++", "random", "array"])
def test_n_init_auto_resolves_as_sklearn(Est, SKEst, init):
    """n_init="auto" is the number of starts scikit-learn's estimator makes (its ``_n_init``);
    the public parameter stays "auto"."""
    X, _ = _blobs(600, 2, 4, seed=2)
    init = X[:4] if init == "array" else init
    ours = Est(4, init=init, n_init="auto", random_state=0).fit(X)
    theirs = SKEst(4, init=init, n_init="auto", random_state=0).fit(X)
    assert ours._n_init == theirs._n_init
    assert ours.get_params()["n_init"] == "auto"


@pytest.mark.parametrize("Est, random_starts", [(fastseg.KMeans, 10), (fastseg.MiniBatchKMeans, 3)])
@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_n_init_auto_fits_as_the_resolved_number(Est, random_starts, init, monkeypatch):
    X, _ = _blobs(1200, 2, 6, seed=9, cluster_std=1.5)
    n = random_starts if init == "random" else 1
    starts = []
    draw = Est._init_centers
    monkeypatch.setattr(Est, "_init_centers", lambda self, *a: starts.append(1) or draw(self, *a))
    a = Est(6, init=init, n_init="auto", random_state=0).fit(X)
    assert len(starts) == n
    b = Est(6, init=init, n_init=n, random_state=0).fit(X)
    _assert_same_fit(a, b)


def test_n_init_auto_in_partial_fit_model_files_and_clones(tmp_path):
    X, _ = _blobs(600, 2, 3, seed=4)
    est = fastseg.MiniBatchKMeans(3, init="random", n_init="auto", random_state=0)
    est.partial_fit(X[:300])
    assert est._n_init == 3 and est.n_init == "auto"
    km = fastseg.KMeans(3, n_init="auto", random_state=0).fit(X)
    assert clone(km).n_init == "auto"
    km.save(tmp_path / "m.json")
    assert fastseg.load(tmp_path / "m.json").n_init == "auto"
    engine = load_engine(tmp_path / "m.json")  # the CLI's reader: no scikit-learn checks
    np.testing.assert_array_equal(engine.predict(X), km.labels_)


@pytest.mark.parametrize("Est", [fastseg.KMeans, fastseg.MiniBatchKMeans])
def test_n_init_auto_stays_the_parameter(Est, monkeypatch):
    """The resolved number is private (``_n_init``): the parameter is "auto" after a fit,
    a failed one included, as scikit-learn's checks want it."""
    est = Est(3, init="random", n_init="auto", batch_size=10)
    check_estimators_overwrite_params(Est.__name__, est)
    check_dont_overwrite_parameters(Est.__name__, est)

    def fail(self, *args):
        raise KeyboardInterrupt  # stopped while drawing the starts

    monkeypatch.setattr(Est, "_init_centers", fail)
    with pytest.raises(KeyboardInterrupt):
        est.fit(_blobs(50, 2, 3)[0])
    assert est.n_init == "auto"


@pytest.mark.parametrize("bad", ["many", 0, 1.5])
def test_n_init_rejects_other_values(bad):
    with pytest.raises(InvalidParameterError, match="n_init"):
        fastseg.KMeans(2, n_init=bad).fit(np.eye(3))


# ----- input containers --------------------------------------------------------------------
NAMES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def parquet_files(blobs32, tmp_path_factory):
    folder = tmp_path_factory.mktemp("parquet")
    df = pl.DataFrame(blobs32, schema=NAMES)
    single = folder.parent / f"{folder.name}-single.parquet"
    df.write_parquet(single)
    parts = []
    for i, start in enumerate(range(0, len(df), 1000)):
        path = folder / f"part-{i}.parquet"
        df.slice(start, 1000).write_parquet(path)
        parts.append(path)
    return single, folder, parts


@pytest.fixture(scope="module")
def numpy_fit(blobs32):
    return fastseg.KMeans(4, random_state=0).fit(blobs32)


CONTAINERS = ["DataFrame", "LazyFrame", "ArrowTable", "path", "Path", "glob", "folder", "list"]


def _container(kind, X, parquet_files):
    single, folder, parts = parquet_files
    df = pl.DataFrame(X, schema=NAMES)
    return {
        "DataFrame": lambda: df,
        "LazyFrame": lambda: df.lazy(),
        "ArrowTable": lambda: df.to_arrow(),
        "path": lambda: str(single),
        "Path": lambda: Path(single),
        "glob": lambda: str(folder / "part-*.parquet"),
        "folder": lambda: str(folder),
        "list": lambda: [str(parts[0]), parts[1], str(parts[2])],
    }[kind]()


@pytest.mark.parametrize("kind", CONTAINERS)
def test_containers_give_the_numpy_result(kind, blobs32, parquet_files, numpy_fit):
    data = _container(kind, blobs32, parquet_files)
    est = fastseg.KMeans(4, random_state=0).fit(data)
    _assert_same_fit(est, numpy_fit)
    assert list(est.feature_names_in_) == NAMES
    assert est.n_features_in_ == 3
    np.testing.assert_array_equal(est.predict(data), numpy_fit.labels_)
    np.testing.assert_array_equal(est.transform(data), numpy_fit.transform(blobs32))


def test_numpy_fit_has_no_feature_names(numpy_fit):
    assert not hasattr(numpy_fit, "feature_names_in_")


def test_columns_select_features(blobs32, parquet_files):
    df = pl.DataFrame(blobs32, schema=NAMES).with_columns(
        pl.Series("id", [f"c{i}" for i in range(len(blobs32))]),
        pl.Series("extra", np.arange(len(blobs32))),
    )
    ref = fastseg.KMeans(4, random_state=0).fit(blobs32[:, [0, 2]])
    est = fastseg.KMeans(4, random_state=0).fit(df, columns=["a", "c"])
    _assert_same_fit(est, ref)
    assert list(est.feature_names_in_) == ["a", "c"]
    # predict finds the fitted columns by name, whatever the column order and extra columns.
    shuffled = df.select(["extra", "c", "id", "b", "a"])
    np.testing.assert_array_equal(est.predict(shuffled), ref.labels_)
    np.testing.assert_array_equal(est.fit_predict(df, columns=["a", "c"]), ref.labels_)
    np.testing.assert_allclose(
        est.fit_transform(df, columns=["a", "c"]), ref.transform(blobs32[:, [0, 2]])
    )
    single, _, _ = parquet_files
    est2 = fastseg.KMeans(4, random_state=0).fit(single, columns=["a", "c"])
    _assert_same_fit(est2, ref)
    est3 = fastseg.KMeans(4, random_state=0).fit(df, columns="b")  # one name, as a string
    assert list(est3.feature_names_in_) == ["b"]
    _assert_same_fit(est3, fastseg.KMeans(4, random_state=0).fit(blobs32[:, [1]]))


def test_column_errors(blobs32):
    df = pl.DataFrame(blobs32, schema=NAMES).with_columns(pl.lit("x").alias("name"))
    with pytest.raises(fastseg.DataError, match="'bb' not found.*did you mean 'b'"):
        fastseg.KMeans(2).fit(df, columns=["a", "bb"])
    with pytest.raises(fastseg.DataError, match="'name'"):
        fastseg.KMeans(2).fit(df, columns=["a", "name"])
    est = fastseg.KMeans(2, random_state=0).fit(df, columns=["a", "b"])
    with pytest.raises(fastseg.DataError, match="'b' not found"):
        est.predict(df.drop("b"))


def test_missing_parquet_path_raises(tmp_path):
    with pytest.raises(fastseg.DataError, match="no such file"):
        fastseg.KMeans(2).fit(str(tmp_path / "nope.parquet"))
    with pytest.raises(fastseg.DataError, match="no files match"):
        fastseg.KMeans(2).fit(str(tmp_path / "*.parquet"))
    with pytest.raises(fastseg.DataError, match="holds no .parquet"):
        fastseg.KMeans(2).fit(str(tmp_path))
    (tmp_path / "fake.parquet").write_text("a,b\n1,2\n")
    with pytest.raises(fastseg.DataError, match="cannot read"):
        fastseg.KMeans(2).fit(str(tmp_path / "fake.parquet"))


# ----- out-of-core -------------------------------------------------------------------------
@pytest.fixture
def spill_spy(monkeypatch):
    """Records, for every RowStore made during the test, whether it kept its rows in RAM."""
    seen = []
    original = fs_dataset.RowStore.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        seen.append(self.in_memory)

    monkeypatch.setattr(fs_dataset.RowStore, "__init__", init)
    return seen


def _spill_dir(tmp_path):
    d = tmp_path / "spill"
    d.mkdir()
    return d


@pytest.mark.parametrize("kind", ["DataFrame", "path"])
def test_spilled_fit_is_bit_identical(kind, blobs32, parquet_files, numpy_fit, tmp_path, spill_spy):
    spill = _spill_dir(tmp_path)
    data = _container(kind, blobs32, parquet_files)
    est = fastseg.KMeans(
        4, random_state=0, memory_budget=1000, spill_dir=spill, batch_size=1000
    ).fit(data)
    assert spill_spy == [False], "a 1000-byte budget should have spilled the rows to disk"
    _assert_same_fit(est, numpy_fit)
    assert os.listdir(spill) == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spilled_scaled_fit_is_bit_identical(dtype, tmp_path, spill_spy):
    X, _ = _blobs(3 * B + 11, 3, 4, dtype, seed=10)
    X[:, 1] *= 100.0
    spill = _spill_dir(tmp_path)
    ram = fastseg.KMeans(4, random_state=0, scale="standard").fit(X)
    disk = fastseg.KMeans(
        4, random_state=0, scale="standard", memory_budget=1000, spill_dir=str(spill)
    ).fit(X)
    assert spill_spy == [True, False]
    _assert_same_fit(ram, disk)
    np.testing.assert_array_equal(ram.scale_mean_, disk.scale_mean_)
    np.testing.assert_array_equal(ram.scale_std_, disk.scale_std_)
    assert os.listdir(spill) == []


def test_spilled_minibatch_is_bit_identical(blobs32, tmp_path, spill_spy):
    spill = _spill_dir(tmp_path)
    df = pl.DataFrame(blobs32, schema=NAMES)
    ram = fastseg.MiniBatchKMeans(4, random_state=0, batch_size=256).fit(df)
    disk = fastseg.MiniBatchKMeans(
        4, random_state=0, batch_size=256, memory_budget=1000, spill_dir=spill
    ).fit(df)
    assert spill_spy == [True, False]
    _assert_same_fit(ram, disk)
    assert ram.n_steps_ == disk.n_steps_
    assert os.listdir(spill) == []


def test_spill_file_gone_after_a_failed_fit(blobs32, tmp_path):
    spill = _spill_dir(tmp_path)
    df = pl.DataFrame(blobs32[:5], schema=NAMES)
    with pytest.raises(fastseg.DataError, match="n_clusters"):
        fastseg.KMeans(8, memory_budget=10, spill_dir=spill).fit(df)
    assert os.listdir(spill) == []


# ----- k-means++ on a sample ---------------------------------------------------------------
def test_init_size_sample_still_finds_the_blobs():
    X, _ = _blobs(20_000, 4, 6, seed=11, cluster_std=0.7, center_box=(-20, 20))
    sk = SKKMeans(6, n_init=3, random_state=0).fit(X)
    for seed in range(3):
        fs = fastseg.KMeans(6, init_size=300, random_state=seed).fit(X)
        assert fs.inertia_ <= sk.inertia_ * 1.05


# ----- empty clusters ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_far", [1, 2, 3])
def test_empty_clusters_relocated_like_sklearn(n_far, dtype):
    X, _ = _blobs(600, 2, 3, dtype, seed=0, cluster_std=0.8)
    far = [[100.0, 100.0], [-100.0, 100.0], [100.0, -100.0]][:n_far]
    init = np.vstack([X[[0, 1, 2]], far])
    k = len(init)
    fs = fastseg.KMeans(k, init=init, tol=0, max_iter=100).fit(X)
    assert np.bincount(fs.labels_, minlength=k).min() > 0, "an empty cluster remains"
    sk = _sk(k, init.astype(dtype), max_iter=100).fit(X)
    if np.array_equal(fs.labels_, sk.labels_):
        _assert_matches_sklearn(fs, sk, X)
    else:  # scikit-learn may legitimately order several farthest rows differently
        assert fs.inertia_ <= sk.inertia_ * 1.01
    centers, labels, inertia, n_iter = naive.lloyd(X, init, max_iter=100)
    np.testing.assert_array_equal(fs.labels_, labels)
    np.testing.assert_allclose(fs.inertia_, inertia, rtol=1e-10)
    assert fs.n_iter_ == n_iter


def test_empty_cluster_relocation_across_chunks_and_spill(tmp_path, spill_spy):
    """The farthest rows are found across several chunks, in RAM and from the spill file."""
    X, _ = _blobs(3 * B + 11, 2, 3, np.float32, seed=17, cluster_std=0.8)
    X[2 * B + 5] = [40.0, 40.0]  # the farthest row, in the third chunk
    init = np.vstack([X[[0, 1, 2]], [[500.0, 500.0], [-500.0, 500.0]]])
    # plain Lloyd throughout, as on spilled data: bit-identical results are promised for one
    # algorithm (Hamerly's centres equal Lloyd's up to float64 rounding: test_hamerly.py)
    ref = fastseg.KMeans(5, init=init, tol=0, algorithm="lloyd").fit(X)
    assert np.bincount(ref.labels_, minlength=5).min() > 0
    _, labels, inertia, n_iter = naive.lloyd(X, init)
    np.testing.assert_array_equal(ref.labels_, labels)
    np.testing.assert_allclose(ref.inertia_, inertia, rtol=1e-10)
    assert ref.n_iter_ == n_iter
    chunked = fastseg.KMeans(5, init=init, tol=0, batch_size=B, algorithm="lloyd").fit(X)
    _assert_same_fit(ref, chunked)
    bounded = fastseg.KMeans(5, init=init, tol=0, batch_size=B, algorithm="hamerly").fit(X)
    np.testing.assert_array_equal(bounded.labels_, ref.labels_)
    np.testing.assert_allclose(bounded.cluster_centers_, ref.cluster_centers_, rtol=1e-6)
    assert bounded.n_iter_ == ref.n_iter_
    spill = _spill_dir(tmp_path)
    df = pl.DataFrame(X, schema=["a", "b"])
    disk = fastseg.KMeans(
        5, init=init, tol=0, batch_size=B, memory_budget=1000, spill_dir=spill
    ).fit(df)
    assert spill_spy[-1] is False
    _assert_same_fit(ref, disk)
    assert os.listdir(spill) == []


def test_duplicate_init_centres_do_not_leave_an_empty_cluster():
    X, _ = _blobs(500, 2, 3, seed=12)
    init = np.vstack([X[:2], X[:1]])  # centre 2 duplicates centre 0: it gets no rows (ties)
    fs = fastseg.KMeans(3, init=init, tol=0).fit(X)
    sk = _sk(3, init).fit(X)
    assert np.bincount(fs.labels_, minlength=3).min() > 0
    _assert_matches_sklearn(fs, sk, X)


# ----- predict / transform / score ---------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_predict_transform_score_consistent(dtype):
    X, _ = _blobs(2000, 3, 4, dtype, seed=13, cluster_std=2.0)
    X_new, _ = _blobs(500, 3, 4, dtype, seed=14, cluster_std=4.0)
    est = fastseg.KMeans(4, random_state=0)
    labels = est.fit_predict(X)
    np.testing.assert_array_equal(labels, est.labels_)
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    D = est.transform(X)
    assert D.shape == (2000, 4)
    np.testing.assert_array_equal(np.argmin(D, axis=1), est.labels_)
    np.testing.assert_allclose(-est.score(X), est.inertia_, rtol=_rtol(dtype))
    np.testing.assert_allclose(
        (D.astype(np.float64).min(axis=1) ** 2).sum(), est.inertia_, rtol=_rtol(dtype)
    )
    np.testing.assert_allclose(fastseg.KMeans(4, random_state=0).fit_transform(X), D)

    # The same centres in scikit-learn: the same answers on unseen data.
    sk = _sk(4, est.cluster_centers_, max_iter=1).fit(X)
    sk.cluster_centers_ = est.cluster_centers_.copy()
    np.testing.assert_array_equal(est.predict(X_new), sk.predict(X_new))
    np.testing.assert_allclose(
        est.transform(X_new), sk.transform(X_new), rtol=_rtol(dtype), atol=1e-4
    )
    np.testing.assert_allclose(est.score(X_new), sk.score(X_new), rtol=_rtol(dtype))
    w = np.linspace(0.5, 2, 500)
    np.testing.assert_allclose(
        est.score(X_new, sample_weight=w), sk.score(X_new, sample_weight=w), rtol=_rtol(dtype)
    )
    with pytest.raises(ValueError):
        est.predict(X_new[:, :2])


def test_predict_ties_go_to_the_lowest_index():
    est = fastseg.KMeans(2, init=np.array([[0.0], [2.0]]), max_iter=1).fit(np.array([[0.0], [2.0]]))
    np.testing.assert_array_equal(est.predict(np.array([[1.0], [0.9], [1.1]])), [0, 0, 1])


def test_predict_before_fit_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        fastseg.KMeans(2).predict(np.zeros((3, 2)))


# ----- scaling -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_standard_scaling_matches_sklearn_pipeline(dtype):
    X, _ = _blobs(3000, 3, 4, dtype, seed=15, cluster_std=1.0)
    X = X * np.array([1.0, 1000.0, 0.01], dtype=dtype) + np.array([5, -3, 100], dtype=dtype)
    scaler = StandardScaler().fit(X)
    Xs = scaler.transform(X)
    init = Xs[[0, 700, 1400, 2100]]
    fs = fastseg.KMeans(4, init=init, scale="standard", tol=0).fit(X)
    sk = _sk(4, init).fit(Xs)
    np.testing.assert_allclose(fs.scale_mean_, scaler.mean_, rtol=1e-6)
    np.testing.assert_allclose(fs.scale_std_, scaler.scale_, rtol=1e-6)
    # cluster_centers_ live in the scaled space
    _assert_matches_sklearn(fs, sk, Xs)
    # predict and transform replay the scaling on raw rows
    X_new = X[::7] + dtype(0.5)
    np.testing.assert_array_equal(fs.predict(X_new), sk.predict(scaler.transform(X_new)))
    np.testing.assert_allclose(
        fs.transform(X_new), sk.transform(scaler.transform(X_new)), rtol=_rtol(dtype), atol=1e-4
    )
    np.testing.assert_array_equal(fs.predict(X), fs.labels_)
    np.testing.assert_allclose(-fs.score(X), fs.inertia_, rtol=_rtol(dtype))
    # the caller's array is not modified by the in-place scaling
    assert np.abs(X[:, 1]).max() > 100


@pytest.mark.parametrize("weighted", [False, True])
def test_scaling_moments_are_accurate(weighted):
    """Mean and std in float64 even for float32 rows far from the origin, weights honoured."""
    rng = np.random.default_rng(18)
    X = rng.standard_normal((3 * B + 9, 3)) * [1e-2, 1.0, 50.0] + [1e4, -3.0, 0.0]
    X = X.astype(np.float32)
    w = rng.uniform(0.1, 3.0, X.shape[0]) if weighted else None
    est = fastseg.KMeans(3, scale="standard", random_state=0).fit(X, sample_weight=w)
    mean, var = naive.weighted_mean_var(X, w)
    np.testing.assert_allclose(est.scale_mean_, mean, rtol=1e-12)
    np.testing.assert_allclose(est.scale_std_, np.sqrt(var), rtol=1e-7)


def test_unscaled_model_has_no_scaling(numpy_fit):
    assert numpy_fit.scale_mean_ is None and numpy_fit.scale_std_ is None


def test_constant_column_is_not_scaled_to_nan():
    X, _ = _blobs(300, 2, 3, seed=16)
    X = np.column_stack([X, np.full(300, 7.0)])
    est = fastseg.KMeans(3, scale="standard", random_state=0).fit(X)
    assert est.scale_std_[2] == 1.0
    assert np.isfinite(est.cluster_centers_).all()
    np.testing.assert_allclose(est.cluster_centers_[:, 2], 0.0, atol=1e-12)


def test_nan_in_predict_input_raises_even_when_scaled(blobs32):
    df = pl.DataFrame(blobs32, schema=NAMES)
    bad = pl.DataFrame({"a": [np.nan, 1.0], "b": [0.0, 1.0], "c": [0.0, 1.0]})
    for scale in ("none", "standard"):
        est = fastseg.KMeans(2, scale=scale, random_state=0).fit(df)
        with pytest.raises(fastseg.DataError, match="NaN"):
            est.predict(bad)
    with pytest.raises(fastseg.DataError, match="column 'a'.*NaN"):
        fastseg.KMeans(2).fit(bad)
    with pytest.raises(ValueError):
        fastseg.KMeans(2).fit(np.array([[np.nan, 1.0], [1.0, 2.0], [3.0, 4.0]]))


# ----- missing values ----------------------------------------------------------------------
def _frame_with_nulls(X):
    df = pl.DataFrame(X, schema=NAMES)
    null_b = np.zeros(len(X), dtype=bool)
    null_b[[3, 10, 11, 500]] = True
    null_c = np.zeros(len(X), dtype=bool)
    null_c[[10, 42]] = True
    df = df.with_columns(
        pl.when(pl.Series(null_b)).then(None).otherwise(pl.col("b")).alias("b"),
        pl.when(pl.Series(null_c)).then(None).otherwise(pl.col("c")).alias("c"),
        pl.Series("note", [None] * len(X), dtype=pl.String),  # nulls outside the features
    )
    return df, ~(null_b | null_c)


def test_missing_drop(blobs32):
    df, keep = _frame_with_nulls(blobs32)
    est = fastseg.KMeans(4, random_state=0, missing="drop").fit(df, columns=NAMES)
    assert est.n_rows_dropped_ == int((~keep).sum()) == 5
    assert est.labels_.shape == (int(keep.sum()),)
    ref = fastseg.KMeans(4, random_state=0).fit(blobs32[keep])
    _assert_same_fit(est, ref)
    assert ref.n_rows_dropped_ == 0


def test_missing_error_names_the_column(blobs32):
    df, _ = _frame_with_nulls(blobs32)
    with pytest.raises(fastseg.DataError, match="column 'b'.*missing"):
        fastseg.KMeans(4, random_state=0).fit(df, columns=NAMES)
    with pytest.raises(fastseg.DataError, match="column 'c'.*missing"):
        fastseg.KMeans(4, random_state=0).fit(df, columns=["a", "c"])
    est = fastseg.KMeans(4, random_state=0).fit(df, columns=["a"])  # no nulls in 'a'
    assert est.n_rows_dropped_ == 0


def test_missing_drop_rejects_sample_weight(blobs32):
    df, _ = _frame_with_nulls(blobs32)
    with pytest.raises(fastseg.DataError, match="sample_weight"):
        fastseg.KMeans(4, missing="drop").fit(
            df, columns=NAMES, sample_weight=np.ones(len(blobs32))
        )


# ----- MiniBatchKMeans ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_blobs():
    X, _ = _blobs(100_000, 8, 8, np.float32, seed=0, cluster_std=1.5)
    return X


def test_minibatch_inertia_close_to_sklearn(big_blobs):
    seeds = range(5)
    fs = [fastseg.MiniBatchKMeans(8, random_state=s).fit(big_blobs).inertia_ for s in seeds]
    with threadpool_limits(limits=1):  # OpenMP spinning against Numba's threads is very slow
        sk = [SKMiniBatchKMeans(8, random_state=s, n_init=1).fit(big_blobs).inertia_ for s in seeds]
    assert np.median(fs) <= np.median(sk) * 1.03
    assert np.median(fs) >= np.median(sk) * 0.97


def test_minibatch_attributes(big_blobs):
    X = big_blobs[:20_000]
    est = fastseg.MiniBatchKMeans(8, random_state=0, batch_size=512).fit(X)
    assert est.n_steps_ >= 2
    assert est.n_iter_ == int(np.ceil(est.n_steps_ * 512 / len(X)))
    assert est.labels_.shape == (len(X),)
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    np.testing.assert_allclose(-est.score(X), est.inertia_, rtol=1e-4)
    counts = est._counts
    assert counts.shape == (8,) and (counts > 0).all()
    est2 = fastseg.MiniBatchKMeans(8, random_state=0, batch_size=512, compute_labels=False).fit(X)
    assert not hasattr(est2, "labels_")
    np.testing.assert_array_equal(est2.cluster_centers_, est.cluster_centers_)


def test_minibatch_partial_fit_reaches_kmeans_quality(big_blobs):
    full = fastseg.KMeans(8, random_state=0).fit(big_blobs)
    ratios = []
    for seed in range(3):  # one k-means++ init from the first batch can be unlucky: the median
        est = fastseg.MiniBatchKMeans(8, random_state=seed)
        for start in range(0, len(big_blobs), 10_000):
            est.partial_fit(big_blobs[start : start + 10_000])
        assert est.n_steps_ == 10
        assert est.labels_.shape == (10_000,)  # labels of the last batch, as scikit-learn
        assert est.cluster_centers_.dtype == np.float32
        np.testing.assert_allclose(est._counts.sum(), len(big_blobs), rtol=0.01)
        ratios.append(-est.score(big_blobs) / full.inertia_)
    assert np.median(ratios) <= 1.05


def test_minibatch_same_result_across_threads(big_blobs):
    X = big_blobs[:30_000]
    a = fastseg.MiniBatchKMeans(8, random_state=4, n_threads=1, batch_size=B + 904).fit(X)
    b = fastseg.MiniBatchKMeans(8, random_state=4, n_threads=2, batch_size=B + 904).fit(X)
    _assert_same_fit(a, b)
    assert a.n_steps_ == b.n_steps_
    c = fastseg.MiniBatchKMeans(8, random_state=4, batch_size=B + 904).fit(X)
    _assert_same_fit(a, c)


def test_minibatch_partial_fit_rejects_scaling():
    X, _ = _blobs(100, 2, 2)
    with pytest.raises(fastseg.DataError, match="scaling"):
        fastseg.MiniBatchKMeans(2, scale="standard").partial_fit(X)


def test_minibatch_partial_fit_after_fit():
    X, _ = _blobs(500, 2, 3, seed=1)
    est = fastseg.MiniBatchKMeans(3, random_state=0, batch_size=100).fit(X)
    steps = est.n_steps_
    est.partial_fit(X)
    assert est.n_steps_ == steps + 1


def test_minibatch_partial_fit_with_small_memory_budget(blobs32, tmp_path):
    df = pl.DataFrame(blobs32, schema=NAMES)
    ram = fastseg.MiniBatchKMeans(4, random_state=0).partial_fit(df)
    disk = fastseg.MiniBatchKMeans(
        4, random_state=0, memory_budget=1000, spill_dir=tmp_path
    ).partial_fit(df)
    np.testing.assert_array_equal(ram.cluster_centers_, disk.cluster_centers_)


def test_minibatch_partial_fit_small_later_batch():
    X, _ = _blobs(500, 2, 3, seed=1)
    est = fastseg.MiniBatchKMeans(3, random_state=0).partial_fit(X)
    est.partial_fit(X[:1])
    assert est.n_steps_ == 2


# ----- model files -------------------------------------------------------------------------
@pytest.mark.parametrize("Est", [fastseg.KMeans, fastseg.MiniBatchKMeans])
@pytest.mark.parametrize("scale", ["none", "standard"])
def test_model_file_round_trip(Est, scale, blobs32, tmp_path):
    df = pl.DataFrame(blobs32, schema=NAMES)
    est = Est(4, random_state=0, scale=scale).fit(df)
    path = tmp_path / "model.json"
    est.save(path)
    doc = json.loads(path.read_text())
    assert doc["format_version"] == fastseg.cluster.modelfile.FORMAT_VERSION
    pre = doc["preprocessor"]
    assert pre["feature_names"] == NAMES
    if scale == "none":
        assert pre["scaling"] is None
    else:
        assert pre["settings"]["scale"] == "standard"
        np.testing.assert_array_equal(pre["scaling"]["centre"], est.scale_mean_)
        np.testing.assert_array_equal(pre["scaling"]["spread"], est.scale_std_)
    loaded = fastseg.load(path)
    assert type(loaded) is Est
    assert loaded.get_params() == est.get_params()
    np.testing.assert_array_equal(loaded.cluster_centers_, est.cluster_centers_)
    assert loaded.cluster_centers_.dtype == est.cluster_centers_.dtype
    assert list(loaded.feature_names_in_) == NAMES
    np.testing.assert_array_equal(loaded.predict(df), est.predict(df))
    np.testing.assert_array_equal(loaded.predict(df), est.labels_)
    np.testing.assert_array_equal(loaded.transform(df), est.transform(df))
    assert loaded.score(df) == est.score(df)
    assert loaded.inertia_ == est.inertia_ and loaded.n_iter_ == est.n_iter_


def test_model_file_with_array_init(tmp_path):
    X, _ = _blobs(200, 2, 3)
    est = fastseg.KMeans(3, init=X[:3], random_state=np.random.RandomState(0)).fit(X)
    est.save(tmp_path / "m.json")
    loaded = fastseg.load(tmp_path / "m.json")
    np.testing.assert_array_equal(loaded.predict(X), est.labels_)
    assert not hasattr(loaded, "feature_names_in_")


def test_model_file_minibatch_without_labels(tmp_path):
    X, _ = _blobs(500, 2, 3)
    est = fastseg.MiniBatchKMeans(3, random_state=0, compute_labels=False).fit(X)
    est.save(tmp_path / "m.json")
    np.testing.assert_array_equal(fastseg.load(tmp_path / "m.json").predict(X), est.predict(X))


def test_model_file_other_version_rejected(tmp_path, numpy_fit):
    path = tmp_path / "model.json"
    numpy_fit.save(path)
    doc = json.loads(path.read_text())
    doc["format_version"] = 999
    path.write_text(json.dumps(doc))
    with pytest.raises(fastseg.ModelFileError, match="999"):
        fastseg.load(path)


def test_model_file_not_json_rejected(tmp_path):
    path = tmp_path / "model.json"
    path.write_bytes(b"\x00\xffPAR1 not json")
    with pytest.raises(fastseg.ModelFileError):
        fastseg.load(path)
    path.write_text("{broken")
    with pytest.raises(fastseg.ModelFileError, match="not JSON"):
        fastseg.load(path)
    path.write_text(json.dumps({"hello": 1}))
    with pytest.raises(fastseg.ModelFileError):
        fastseg.load(path)
    with pytest.raises(fastseg.ModelFileError, match="no such"):
        fastseg.load(tmp_path / "missing.json")


def test_model_file_damaged_rejected(tmp_path, numpy_fit):
    path = tmp_path / "model.json"
    numpy_fit.save(path)
    doc = json.loads(path.read_text())
    doc["cluster_centers"] = doc["cluster_centers"][:-1]
    path.write_text(json.dumps(doc))
    with pytest.raises(fastseg.ModelFileError, match="damaged"):
        fastseg.load(path)


# ----- scikit-learn estimator checks -------------------------------------------------------
# Checks that cannot apply to fastseg, with the reason. scikit-learn's own KMeans and
# MiniBatchKMeans declare the same two (sklearn/utils/_test_common/instance_generator.py,
# PER_ESTIMATOR_XFAIL_CHECKS): the k-means++ draw depends on the number of rows, so repeating a
# row is not the same random stream as doubling its weight, and the clusterings differ.
EXPECTED_FAILED_CHECKS = {
    "KMeans": {
        "check_sample_weight_equivalence_on_dense_data": (
            "sample_weight is not equivalent to removing/repeating samples: the randomised "
            "k-means++ init sees a different number of rows (as scikit-learn's KMeans)."
        ),
        "check_sample_weight_equivalence_on_sparse_data": (
            "sample_weight is not equivalent to removing/repeating samples (as scikit-learn's "
            "KMeans); fastseg does not take sparse input anyway."
        ),
    },
    "MiniBatchKMeans": {
        "check_sample_weight_equivalence_on_dense_data": (
            "sample_weight is not equivalent to removing/repeating samples: random init and "
            "random mini-batches (as scikit-learn's MiniBatchKMeans)."
        ),
        "check_sample_weight_equivalence_on_sparse_data": (
            "sample_weight is not equivalent to removing/repeating samples (as scikit-learn's "
            "MiniBatchKMeans); fastseg does not take sparse input anyway."
        ),
    },
}

# Checks that fail because of a bug in fastseg (run as strict xfails, so a fix shows up).
KNOWN_BUGS = {}


def _expected_failed_checks(estimator):
    name = type(estimator).__name__
    return {**EXPECTED_FAILED_CHECKS.get(name, {}), **KNOWN_BUGS.get(name, {})}


@parametrize_with_checks(
    [
        fastseg.KMeans(n_clusters=3),
        fastseg.KMeans(n_clusters=3, scale="standard", init="random", n_init=2),
        fastseg.MiniBatchKMeans(n_clusters=3, batch_size=10),
    ],
    expected_failed_checks=_expected_failed_checks,
    xfail_strict=True,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("n, size", [(5, 10), (10, 10), (30, 10), (1000, 10), (10**9, 1000)])
def test_sample_positions_are_a_uniform_sample(n, size):
    positions = sample_positions(n, size, seed=3)
    assert positions.size == min(n, size)
    assert (np.diff(positions) > 0).all() and positions[0] >= 0 and positions[-1] < n
    np.testing.assert_array_equal(positions, sample_positions(n, size, seed=3))


@pytest.mark.parametrize("n, size", [(30, 10), (200, 10)])  # both ways of drawing
def test_sample_positions_give_every_row_the_same_chance(n, size):
    counts = np.zeros(n)
    for seed in range(3000):
        counts[sample_positions(n, size, seed)] += 1
    expected = 3000 * size / n
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected)


def test_fit_reports_where_its_time_went(blobs32):
    km = fastseg.KMeans(4, random_state=0).fit(blobs32)
    assert set(km.timings_) == {"read", "preprocess", "init", "iterations", "reference"}
    mb = fastseg.MiniBatchKMeans(4, random_state=0).fit(blobs32)
    phases = {"read", "preprocess", "init", "iterations", "labels", "reference"}
    assert set(mb.timings_) == phases
    assert all(t >= 0 for t in [*km.timings_.values(), *mb.timings_.values()])


@pytest.mark.parametrize("Est", [fastseg.KMeans, fastseg.MiniBatchKMeans])
def test_preprocessing_parameters_are_the_settings_declared_once(Est):
    """scikit-learn needs explicit __init__ parameters; they must stay the settings' fields,
    with the settings' (library) defaults, each with a parameter constraint."""
    from fastseg.preprocess.settings import PreprocessSettings

    params = Est().get_params()
    library = PreprocessSettings()
    for name in PreprocessSettings.names():
        assert params[name] == getattr(library, name), name
        assert name in Est._parameter_constraints, name
    assert PreprocessSettings.of(Est(scale="robust")).scale == "robust"
