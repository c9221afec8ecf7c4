"""Edge cases found in review: each would fail again if its fix were undone."""

import json
import os

import numpy as np
import polars as pl
import pytest

import fastseg
from fastseg import config
from fastseg.cli import main
from fastseg.cluster.modelfile import load_engine
from fastseg.workflow.segments import order_by_size


@pytest.fixture()
def frame():
    rng = np.random.default_rng(0)
    return pl.DataFrame(
        {
            "a": rng.standard_normal(3000).astype(np.float32),
            "b": rng.standard_normal(3000).astype(np.float32),
        }
    )


def one_line_error(capsys, argv, *needles):
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("fastseg: error:"), err
    for needle in needles:
        assert needle in err


def test_predict_with_a_model_fitted_on_an_array(tmp_path, frame, capsys):
    model = tmp_path / "m.json"
    fastseg.KMeans(2, random_state=0).fit(frame.to_numpy()).save(model)
    data = tmp_path / "d.parquet"
    frame.write_parquet(data)
    one_line_error(
        capsys, ["predict", model, data, "--out", tmp_path / "o.parquet"], "without column names"
    )


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda d: d["preprocessor"]["scaling"].update(spread=[0.0, 1.0]), "positive spreads"),
        (lambda d: d["preprocessor"]["scaling"].update(centre=[0.0]), "scaling centre"),
        (lambda d: d["cluster_centers"][0].__setitem__(0, None), "finite"),
        (lambda d: d["preprocessor"].update(feature_names=["a"]), "feature_names"),
        (lambda d: d["preprocessor"].update(log1p_columns=[5]), "log1p_columns"),
        (lambda d: d["preprocessor"]["settings"].update(scale="odd"), "scale"),
        (lambda d: d.pop("preprocessor"), "missing 'preprocessor'"),
        (lambda d: d["cluster_centers"][0].__setitem__(0, 1e308), "beyond 1e150"),
        (lambda d: d["preprocessor"].update(categories={"r": ["a", 1]}), "all text"),
        (lambda d: d["params"].update(n_clusters="x"), "n_clusters"),
        (lambda d: d["params"].update(n_clusters=0), "n_clusters"),
        (lambda d: d["params"].update(batch_size=True), "batch_size"),
        (lambda d: d.update(dtype="int8"), "dtype"),
    ],
)
@pytest.mark.parametrize("loader", [fastseg.load, load_engine], ids=["estimator", "engine"])
def test_damaged_model_files_are_refused(tmp_path, frame, edit, needle, loader):
    path = tmp_path / "m.json"
    fastseg.KMeans(2, scale="standard", random_state=0).fit(frame).save(path)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(fastseg.ModelFileError, match=needle):
        loader(path)


def test_glob_over_files_with_widened_types_and_extra_columns(tmp_path, frame):
    first = frame.head(1500).with_columns(pl.col("a").cast(pl.Int32))
    second = frame.tail(1500).with_columns(pl.col("a").cast(pl.Int64), extra=pl.lit(1))
    first.write_parquet(tmp_path / "p1.parquet")
    second.write_parquet(tmp_path / "p2.parquet")
    km = fastseg.KMeans(2, random_state=0).fit(str(tmp_path / "p*.parquet"), columns=["a", "b"])
    assert km.labels_.shape == (3000,)


def test_random_init_with_a_sample_smaller_than_k():
    X = np.random.default_rng(1).standard_normal((100, 3))
    km = fastseg.KMeans(5, init="random", init_size=2, random_state=0).fit(X)
    assert np.isfinite(km.cluster_centers_).all()


def test_outputs_get_the_usual_file_mode(tmp_path, frame):
    old = os.umask(0o022)
    try:
        path = tmp_path / "m.json"
        fastseg.KMeans(2, random_state=0).fit(frame).save(path)
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_labels_problems_are_found_before_the_fit(tmp_path, frame, capsys):
    data = tmp_path / "d.parquet"
    frame.with_columns(segment=pl.lit(1)).write_parquet(data)
    model = tmp_path / "m.json"
    one_line_error(
        capsys,
        [
            "fit",
            data,
            "--k",
            2,
            "--features",
            "a,b",
            "--model",
            model,
            "--labels",
            tmp_path / "l.parquet",
        ],
        "'segment'",
    )
    assert not model.exists()
    one_line_error(capsys, ["fit", data, "--k", 2, "--features", "a,b", "--keep", "a"], "--labels")


def test_scaling_does_not_depend_on_batch_size_when_rows_are_dropped():
    rng = np.random.default_rng(2)
    values = rng.standard_normal((20_000, 2)) * [3, 1e3] + [1e4, 5]
    df = pl.DataFrame({"a": values[:, 0], "b": values[:, 1]})
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 0).then(None).otherwise(pl.col("a")).alias("a")
    )
    fits = [
        fastseg.KMeans(3, scale="standard", missing="drop", random_state=0, batch_size=b).fit(df)
        for b in (4096, 12_288, 1 << 18)
    ]
    for km in fits[1:]:
        assert np.array_equal(km.scale_std_, fits[0].scale_std_)
        assert np.array_equal(km.cluster_centers_, fits[0].cluster_centers_)


def test_minibatch_larger_than_a_stream_chunk(monkeypatch):
    monkeypatch.setattr(config, "batch_size", 4096)
    X = np.random.default_rng(3).standard_normal((50_000, 2)).astype(np.float32)
    km = fastseg.MiniBatchKMeans(
        3, batch_size=10_000, max_iter=1, max_no_improvement=None, random_state=0
    ).fit(X)
    assert km.n_steps_ == 5


def test_renumbering_keeps_minibatch_state_in_step(frame):
    X = frame.to_numpy()
    km = fastseg.MiniBatchKMeans(3, random_state=0, batch_size=256).fit(X)
    order = order_by_size(km)
    assert np.array_equal(km._centers.astype(np.float32), km.cluster_centers_)
    sizes = np.bincount(km.labels_, minlength=3)
    assert list(sizes) == sorted(sizes, reverse=True) and order.shape == (3,)
    km.partial_fit(X[:500])
    assert np.bincount(km.predict(X), minlength=3)[0] >= np.bincount(km.predict(X))[2]


PREPROCESSING = {
    "standard, rows with nulls dropped": dict(scale="standard", missing="drop"),
    "minmax, mean filling": dict(scale="minmax", missing="mean"),
    "robust, log1p, median filling, one-hot, PCA": dict(
        scale="robust",
        log1p=["c"],
        missing="median",
        categorical=["kind"],
        pca=3,
    ),
}


@pytest.mark.parametrize("settings", list(PREPROCESSING))
@pytest.mark.parametrize("Est", [fastseg.KMeans, fastseg.MiniBatchKMeans])
def test_model_file_is_byte_identical_whatever_threads_and_batches(
    Est, settings, tmp_path, monkeypatch
):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((30_000, 4)).astype(np.float32)
    frame = pl.DataFrame(X, schema=["a", "b", "c", "d"]).with_columns(
        pl.col("c").abs(),
        pl.when(pl.int_range(pl.len()) % 13 == 0).then(None).otherwise(pl.col("a")).alias("a"),
        kind=pl.Series(rng.choice(["x", "y", "z"], 30_000)),
    )
    files = []
    for threads, rows in ((1, 4096), (2, 1 << 18), (2, 12_288)):
        monkeypatch.setattr(config, "batch_size", rows)
        path = tmp_path / f"m{threads}-{rows}.json"
        extra = {"batch_size": rows} if Est is fastseg.KMeans else {}
        model = Est(4, random_state=3, n_threads=threads, **PREPROCESSING[settings], **extra)
        model.fit(frame, columns=["a", "b", "c", "d"]).save(path)
        files.append(path.read_bytes())
    assert files[0] == files[1] == files[2]


def test_a_failed_refit_leaves_the_fitted_model_working(frame):
    model = fastseg.KMeans(2, random_state=0, categorical=None).fit(frame, columns=["a", "b"])
    before = model.predict(frame)
    with pytest.raises(fastseg.DataError, match="not found"):
        model.fit(frame, columns=["a", "nope"])
    np.testing.assert_array_equal(model.predict(frame), before)


def test_a_refit_forgets_what_the_last_fit_learned(frame):
    with_region = frame.with_columns(r=pl.Series(["x", "y"] * (frame.height // 2)))
    model = fastseg.KMeans(2, random_state=0, categorical=["r"]).fit(with_region, columns=["a"])
    assert model.categories_ == {"r": ["x", "y"]}
    model.set_params(categorical=None).fit(with_region, columns=["a", "b"])
    assert not hasattr(model, "categories_") and model.preprocessor_.levels is None


def test_partial_fit_after_loading_goes_on_from_the_fitted_centres(tmp_path):
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(10, 1, (300, 2)), rng.normal(0, 1, (300, 2))]
    path = tmp_path / "m.json"
    fastseg.MiniBatchKMeans(2, random_state=0, batch_size=64).fit(X).save(path)
    loaded = fastseg.load(path)
    before = loaded.cluster_centers_.copy()
    loaded.partial_fit(np.array([[3.0, 3.0], [3.0, 3.0]]))
    # the fit's rows per centre weigh against the two new rows: the centres barely move
    assert np.abs(loaded.cluster_centers_ - before).max() < 0.05


@pytest.mark.parametrize("missing", ["drop", "mean"])
def test_partial_fit_handles_nulls_as_the_fit_did(missing):
    rows = pl.DataFrame({"a": [0.0, 1.0, None, 10.0, 11.0, 12.0] * 20,
                         "b": [0.0, 1.0, 2.0, 10.0, 11.0, None] * 20})  # fmt: skip
    model = fastseg.MiniBatchKMeans(2, random_state=0, missing=missing, batch_size=16).fit(rows)
    fill = None if model.impute_values_ is None else model.impute_values_.copy()
    batch = pl.DataFrame({"a": [None, 100.0, 100.0], "b": [100.0, 100.0, 100.0]})
    model.partial_fit(batch)
    model.partial_fit(batch)  # a second batch with nulls too
    if missing == "mean":  # filled with the fitted means, not the batch's
        np.testing.assert_array_equal(model.impute_values_, fill)
        assert model.labels_.shape == (3,)
    else:
        assert model.labels_.shape == (2,)


def test_labels_of_a_fit_that_kept_none_are_refused(frame, tmp_path):
    from fastseg.workflow.labels import write_labels

    path = tmp_path / "d.parquet"
    frame.write_parquet(path)
    model = fastseg.MiniBatchKMeans(2, random_state=0, compute_labels=False).fit(path)
    assert not hasattr(model, "labels_")
    with pytest.raises(fastseg.FastsegError, match="compute_labels=False"):
        write_labels(model, path, tmp_path / "l.parquet", fitted=True)
    model.save(tmp_path / "m.json")  # a model without labels still saves


def test_a_derived_column_may_not_take_an_input_column_s_name(frame):
    with pytest.raises(fastseg.DataError, match="has the name of a column"):
        fastseg.KMeans(2, derive=["a = b * 2"]).fit(frame, columns=["a", "b"])


def test_a_hive_folder_with_a_null_partition(frame, tmp_path):
    for part, rows in (
        ("year=2024", frame.head(1500)),
        ("year=__HIVE_DEFAULT_PARTITION__", frame.tail(1500)),
    ):
        (tmp_path / part).mkdir()
        rows.write_parquet(tmp_path / part / "0.parquet")
    model = fastseg.KMeans(2, random_state=0).fit(str(tmp_path), columns=["a", "b"])
    years = pl.concat([b.kept for b in model.iter_assign(str(tmp_path), keep=["year"])])["year"]
    assert years.len() == 3000 and years.null_count() == 1500 and years.max() == 2024
