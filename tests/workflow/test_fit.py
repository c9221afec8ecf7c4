"""The fit workflow as a library function: everything ``fastseg fit`` does, without the CLI."""

import json

import numpy as np
import polars as pl
import pytest

from fastseg.cluster.lloyd import LloydEngine
from fastseg.cluster.modelfile import load_engine
from fastseg.errors import DataError, FastsegError
from fastseg.preprocess.settings import CLI_DEFAULTS, PreprocessSettings
from fastseg.workflow import select_k as selection
from fastseg.workflow.fit import FitResult, fit_segments
from fastseg.workflow.segments import renumber

CENTERS = np.array([[0, 0, 0], [8, 0, 0], [0, 8, 0], [0, 0, 8], [8, 8, 8]], dtype=float)
FEATURES = ["a", "b", "c"]


def blobs(tmp_path, name="q", seed=0, n=2000):
    """Five well separated blobs in columns a, b, c, an id column, and a few nulls."""
    rng = np.random.default_rng(seed)
    X = CENTERS[rng.integers(0, 5, n)] + rng.standard_normal((n, 3))
    frame = pl.DataFrame(X, schema=FEATURES).with_columns(id=pl.int_range(n))
    frame = frame.with_columns(a=pl.when(pl.col("id") % 400 == 7).then(None).otherwise(pl.col("a")))
    path = tmp_path / f"{name}.parquet"
    frame.write_parquet(path)
    return path


def fit(path, k=5, **kwargs):
    return fit_segments(path, k, features=FEATURES, settings=CLI_DEFAULTS, **kwargs)


def test_fits_numbers_segments_largest_first_and_returns_the_result(tmp_path):
    result = fit(blobs(tmp_path))
    assert isinstance(result, FitResult) and result.k == 5 and result.seconds > 0
    sizes = np.bincount(result.model.labels_, minlength=5)
    assert (np.diff(sizes) <= 0).all()
    assert result.model.n_rows_dropped_ == 5  # the rows with a null, dropped by CLI_DEFAULTS
    assert result.moved is None and result.rows_written == 0


def test_library_settings_by_default(tmp_path):
    path = blobs(tmp_path)
    with pytest.raises(DataError):  # missing="error": the library never drops rows unasked
        fit_segments(path, 3, features=FEATURES)
    result = fit_segments(path, 3, features=FEATURES, settings=PreprocessSettings(missing="drop"))
    assert result.model.scale == "none"


def test_labels_and_model_are_written_together(tmp_path):
    labels, model = tmp_path / "labels.parquet", tmp_path / "model.json"
    result = fit(blobs(tmp_path), labels=labels, model=model, keep=["id"], seed=3)
    written = pl.read_parquet(labels)
    assert written.columns == ["id", "segment"] and written.height == 2000
    assert (result.rows_written, result.rows_unlabelled) == (2000, 5)
    assert written["segment"].drop_nulls().to_list() == result.model.labels_.tolist()
    doc = json.loads(model.read_text())
    assert doc["metrics"]["cluster_sizes"] == np.bincount(result.model.labels_).tolist()
    np.testing.assert_array_equal(
        load_engine(model).cluster_centers_, result.model.cluster_centers_
    )


@pytest.mark.parametrize("algorithm, max_iter", [("lloyd", 300), ("minibatch", 100)])
def test_algorithms_come_from_the_registry(tmp_path, algorithm, max_iter):
    result = fit(blobs(tmp_path), 3, algorithm=algorithm)
    assert result.model.max_iter == max_iter
    engines = {"lloyd": "LloydEngine", "minibatch": "MiniBatchEngine"}
    assert type(result.model).__name__ == engines[algorithm]


def test_k_auto_takes_the_knee_and_says_so(tmp_path):
    said = []
    result = fit(blobs(tmp_path), "auto", k_range=range(2, 9), say=said.append)
    assert result.k == 5 == result.model.n_clusters
    assert len(said) == 1 and said[0].startswith("--k auto: k = 5, the knee of the inertia curve")
    assert "(stability" in said[0]


def test_k_auto_without_a_knee_takes_the_best_silhouette(tmp_path, monkeypatch):
    monkeypatch.setattr(selection, "find_knee", lambda *args, **kwargs: None)
    said = []
    result = fit(blobs(tmp_path), "auto", k_range=[3, 4, 5, 6], say=said.append)
    assert result.k == 5
    assert len(said) == 1
    assert said[0].startswith("--k auto: the inertia curve has no clear knee; k = 5, the best")


@pytest.mark.parametrize("as_file", [True, False], ids=["model file", "fitted model"])
def test_align_to_keeps_the_previous_numbers(tmp_path, as_file):
    path = blobs(tmp_path)
    previous = fit(path).model
    renumber(previous, np.array([3, 0, 4, 1, 2]))  # numbered otherwise than by size
    previous.save(tmp_path / "previous.json")
    result = fit(path, align_to=tmp_path / "previous.json" if as_file else previous)
    np.testing.assert_allclose(result.model.cluster_centers_, previous.cluster_centers_)
    np.testing.assert_array_equal(result.model.labels_, previous.labels_)
    assert result.moved.shape == (5,) and result.moved.max() < 1e-6


def test_align_to_a_model_of_more_segments_fails_before_the_fit(tmp_path, monkeypatch):
    path = blobs(tmp_path)
    fit(path, model=tmp_path / "before.json")
    monkeypatch.setattr(LloydEngine, "fit", _no_work)
    with pytest.raises(DataError, match="as many segments or more"):
        fit(path, 3, align_to=tmp_path / "before.json")
    monkeypatch.setattr(selection, "select_k", _no_work)
    with pytest.raises(DataError, match="not these"):
        fit_segments(path, "auto", features=["a", "b"], align_to=tmp_path / "before.json")


def _no_work(*args, **kwargs):
    raise AssertionError("the work began before the request was checked")


@pytest.mark.parametrize(
    "outputs, error, match",
    [
        (dict(model="exists.json"), FastsegError, "already exists"),
        (dict(labels="exists.json", model="new.json"), FastsegError, "already exists"),
        (dict(model="nofolder/m.json"), FastsegError, "does not exist"),
        (dict(keep=["id"]), FastsegError, "add --labels"),
        (dict(labels="l.parquet", keep=["nope"]), DataError, "not in the input: nope"),
    ],
)
def test_outputs_are_checked_before_any_work(tmp_path, monkeypatch, outputs, error, match):
    path = blobs(tmp_path)
    (tmp_path / "exists.json").write_text("precious")
    monkeypatch.setattr(LloydEngine, "fit", _no_work)
    monkeypatch.setattr(selection, "select_k", _no_work)
    outputs = {
        name: value if name == "keep" else tmp_path / value for name, value in outputs.items()
    }
    with pytest.raises(error, match=match):
        fit(path, "auto", **outputs)  # k auto: select-k would be the first work
    assert (tmp_path / "exists.json").read_text() == "precious"
    assert not (tmp_path / "new.json").exists()


def test_overwrite_replaces_both_outputs(tmp_path):
    path = blobs(tmp_path)
    labels, model = tmp_path / "l.parquet", tmp_path / "m.json"
    labels.write_text("old")
    model.write_text("old")
    fit(path, 3, labels=labels, model=model, overwrite=True)
    assert pl.read_parquet(labels).height == 2000
    assert json.loads(model.read_text())["format"] == "fastseg-model"


def test_a_categorical_column_among_the_features_is_one_hot_with_or_without_labels(tmp_path):
    path = blobs(tmp_path)
    frame = pl.read_parquet(path).with_columns(r=pl.Series(["x", "y"] * 1000))
    frame.write_parquet(path)
    settings = CLI_DEFAULTS.with_changes(categorical=["r"])
    plain = fit_segments(path, 3, features=["a", "r"], settings=settings)
    labelled = fit_segments(
        path, 3, features=["a", "r"], settings=settings, labels=tmp_path / "l.parquet"
    )
    np.testing.assert_array_equal(plain.model.labels_, labelled.model.labels_)
    assert labelled.rows_written == 2000


def test_features_named_like_the_segment_table_columns_do_not_replace_them(tmp_path):
    from fastseg.workflow.segments import format_segment_table, segment_table

    path = tmp_path / "named.parquet"
    rng = np.random.default_rng(0)
    pl.DataFrame({"size": rng.normal(50, 10, 600), "share": rng.normal(0, 1, 600)}).write_parquet(
        path
    )
    result = fit_segments(path, 3, features=["size", "share"], settings=CLI_DEFAULTS)
    table = segment_table(result.model)
    assert table["size"].sum() == 600 and abs(table["share"].sum() - 1) < 1e-9
    assert {"size (feature)", "share (feature)"} <= set(table.columns)
    assert "size (feature)" in format_segment_table(table)


def test_the_fit_table_shows_category_shares_in_percent_and_labels_log1p_centres(tmp_path):
    from fastseg.workflow.segments import segment_summary

    rng = np.random.default_rng(0)
    path = tmp_path / "mixed.parquet"
    pl.DataFrame(
        {
            "income": rng.lognormal(10, 1, 900),
            "age": rng.normal(40, 10, 900),
            "region": rng.choice(["north", "south"], 900),
        }
    ).write_parquet(path)
    settings = CLI_DEFAULTS.with_changes(categorical=["region"], log1p=["income"])
    result = fit_segments(path, 3, features=["income", "age", "region"], settings=settings)
    text = segment_summary(result.model)
    rows = {line.split("  ")[0].strip(): line for line in text.splitlines()}
    assert "income (centre)" in rows and "age" in rows
    shares = rows["region=north"].split()[1:]
    assert all(v.endswith("%") for v in shares)
    assert "geometric mean" in text and "fastseg profile" in text
