"""``fastseg fit --algorithm kprototypes``: numbers and categories without one-hot, from the
command line to the labels file, the model file, predict, profile and explain."""

import json

import numpy as np
import polars as pl
import pytest
from test_cli import assert_one_line_error, run

import fastseg
from fastseg.cluster.kprototypes import KPrototypes

NUMERIC = ["age", "income", "tenure_months", "monthly_charge"]
CATEGORICAL = ["region", "gender"]
FIT = ["--k", "4", "--features", ",".join(NUMERIC), "--categorical", ",".join(CATEGORICAL)]
FIT += ["--algorithm", "kprototypes", "--n-init", "2", "--seed", "3"]


@pytest.fixture(scope="module")
def fitted(customers, tmp_path_factory):
    """A CLI fit of the customers (which hold a few nulls) with its model and labels."""
    from fastseg.cli import main

    folder = tmp_path_factory.mktemp("kprototypes")
    model, labels = folder / "model.json", folder / "labels.parquet"
    code = main(["fit", str(customers), *FIT, "--model", str(model), "--labels", str(labels)])
    assert code == 0
    return model, labels


def test_fit_equals_the_library_numbered_largest_first(customers, fitted):
    """The CLI's defaults (standard scaling, rows with a missing value dropped and left
    without a segment) are the library's parameters; segments come largest first."""
    model_path, labels_path = fitted
    labels = pl.read_parquet(labels_path)
    ours = KPrototypes(4, scale="standard", missing="drop", n_init=2, random_state=3)
    ours.fit(customers, categorical=CATEGORICAL, columns=NUMERIC)
    nulls = pl.read_parquet(customers).select(
        pl.any_horizontal(pl.col(NUMERIC + CATEGORICAL).is_null())
    )
    nulls = nulls.to_series().to_numpy()
    assert nulls.any() and labels["segment"].null_count() == nulls.sum()
    assert labels.columns[:-1] == pl.read_parquet(customers).columns  # every input column
    segment = labels["segment"].to_numpy()[~nulls].astype(np.int64)
    sizes = np.bincount(segment, minlength=4)
    assert (np.diff(sizes) <= 0).all()
    # the same partition as the library's fit, numbered by size
    order = np.argsort(-ours.cluster_sizes_, kind="stable")
    renumbered = np.empty(4, np.int64)
    renumbered[order] = np.arange(4)
    np.testing.assert_array_equal(segment, renumbered[ours.labels_])
    loaded = fastseg.load(model_path)
    assert isinstance(loaded, KPrototypes)
    assert loaded.cost_ == pytest.approx(ours.cost_, rel=1e-12)
    np.testing.assert_array_equal(loaded.cluster_sizes_, sizes)
    np.testing.assert_allclose(loaded.cluster_centers_, ours.cluster_centers_[order], rtol=1e-12)
    np.testing.assert_array_equal(loaded.modes_, ours.modes_[order])


def test_fit_prints_the_prototypes(customers, tmp_path, capsys):
    code, out, err = run(capsys, "fit", customers, *FIT)
    assert code == 0, err
    assert "region (mode)" in out and "gender (mode)" in out and "income" in out
    assert "cost" in err and "gamma 0.5" in err  # standardised: half of a std of 1
    assert "dropped" in err


def test_predict_equals_the_fit_labels(customers, fitted, tmp_path, capsys):
    model, labels = fitted
    out = tmp_path / "p.parquet"
    code, _, err = run(capsys, "predict", model, customers, "--out", out, "--keep", "customer_id")
    assert code == 0, err
    assert pl.read_parquet(out)["segment"].equals(pl.read_parquet(labels)["segment"])


def test_profile_and_explain_read_the_model(customers, fitted, capsys):
    model, labels = fitted
    code, out, err = run(capsys, "profile", model, customers, "--format", "json", "--rules")
    assert code == 0, err
    found = json.loads(out)
    sizes = pl.read_parquet(labels)["segment"].drop_nulls().value_counts(sort=True)["count"]
    assert [s["size"] for s in found["profile"]] == sizes.to_list()
    assert "region=north" in found["profile"][0]
    assert found["rules"]["agreement"] > 0.6
    code, out, err = run(capsys, "explain", model, customers)
    assert code == 0, err
    assert "segment 0" in out


@pytest.mark.parametrize("command", ["report", "drift", "serve", "dashboard"])
def test_commands_that_need_centres_say_so(customers, fitted, tmp_path, capsys, command):
    model, _ = fitted
    extra = {"report": ["--out", tmp_path / "r.html"], "drift": [], "serve": [], "dashboard": []}
    args = [model] if command == "serve" else [model, customers]
    code, _, err = run(capsys, command, *args, *extra[command])
    assert_one_line_error(code, err, "k-prototypes model", "--algorithm lloyd")


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--k", "auto"], "--k auto"),
        (["--log1p", "income"], "--log1p"),
        (["--scale", "robust"], "--scale robust"),
        (["--missing", "median"], "--missing median"),
        (["--pca", "2"], "--pca"),
        (["--init", "random"], "--init random"),
    ],
)
def test_what_kprototypes_does_not_take_is_one_line(customers, capsys, extra, needle):
    argv = [customers, *FIT, *extra]
    if "--k" in extra:
        argv = [customers, *FIT[2:], *extra]
    code, _, err = run(capsys, "fit", *argv)
    assert_one_line_error(code, err, "--algorithm kprototypes does not take", needle)


def test_kprototypes_does_not_run_on_dask_yet(customers, capsys):
    code, _, err = run(capsys, "fit", customers, *FIT, "--workers", "2")
    assert_one_line_error(code, err, "does not run on Dask yet")


def test_kprototypes_needs_categorical_columns(customers, capsys):
    code, _, err = run(capsys, "fit", customers, *FIT[:4], *FIT[6:])
    assert_one_line_error(code, err, "--categorical")


def test_missing_error_stops_at_a_null(customers, capsys):
    code, _, err = run(capsys, "fit", customers, *FIT, "--missing", "error")
    assert_one_line_error(code, err, "missing values", "missing='drop'")


def test_library_drift_refuses_a_kprototypes_model(customers, fitted):
    from fastseg.errors import FastsegError

    with pytest.raises(FastsegError, match="KPrototypes"):
        fastseg.drift(fastseg.load(fitted[0]), customers)
