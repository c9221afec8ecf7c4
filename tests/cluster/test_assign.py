"""The one streaming assign path: every row once, in input order, the same answers as a
search over the whole table, whatever the batch size; nulls handled as documented."""

import warnings

import numpy as np
import polars as pl
import pytest
from naive import nearest

import fastseg
from fastseg.cli import main
from fastseg.errors import DataError
from fastseg.preprocess.categories import UnseenCategoryWarning


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(1)
    n = 5000
    return pl.DataFrame(
        {
            "id": np.arange(n),
            "a": rng.normal(0, 1, n) + rng.integers(0, 3, n) * 5,
            "b": rng.normal(0, 1, n),
            "region": np.array(["n", "s"])[rng.integers(0, 2, n)],
        }
    ).with_columns(a=pl.when(pl.col("id") % 250 == 3).then(None).otherwise(pl.col("a")))


@pytest.fixture(scope="module")
def model(table):
    return fastseg.KMeans(3, random_state=0, scale="standard", missing="drop").fit(
        table, columns=["a", "b"]
    )


@pytest.mark.parametrize("batch_size", [1, 777, 100_000])
def test_batches_line_up_with_the_input_and_match_a_whole_search(table, model, batch_size):
    batches = list(model.iter_assign(table, keep=["id"], nulls="skip", batch_size=batch_size))
    assert all(b.n_rows <= batch_size for b in batches)
    ids = pl.concat([b.kept for b in batches])["id"].to_numpy()
    np.testing.assert_array_equal(ids, np.arange(table.height))
    missing = np.concatenate([b.missing for b in batches])
    np.testing.assert_array_equal(missing, table["a"].is_null().to_numpy())
    segment = np.concatenate([b.segment for b in batches])
    distance = np.concatenate([b.distance for b in batches])
    rows = table.filter(~pl.Series(missing)).select("a", "b").to_numpy().astype(np.float32)
    scaled = (rows - model.scale_mean_.astype(np.float32)) / model.scale_std_.astype(np.float32)
    labels, d2 = nearest(scaled.astype(np.float64), model.cluster_centers_.astype(np.float64))
    np.testing.assert_array_equal(segment[~missing], labels)
    np.testing.assert_allclose(distance[~missing], d2, rtol=1e-5)
    assert np.isnan(distance[missing]).all()


def test_a_row_with_nulls_is_treated_as_the_fit_treated_one(table, model, tmp_path):
    """missing="drop": -1 from predict (a null segment from the CLI), NaN distances;
    "error": an error, in the library and the CLI alike; "mean": filled."""
    labels = model.predict(table)
    gaps = table["a"].is_null().to_numpy()
    assert gaps.any() and (labels[gaps] == -1).all() and (labels[~gaps] >= 0).all()
    np.testing.assert_array_equal(labels[~gaps], model.predict(table.filter(~pl.Series(gaps))))
    assert np.isnan(model.transform(table)[gaps]).all()
    strict = fastseg.KMeans(3, random_state=0, missing="error").fit(
        table.drop_nulls(), columns=["a", "b"]
    )
    with pytest.raises(DataError, match="column 'a' .* has missing values"):
        strict.predict(table)
    path, out = tmp_path / "t.parquet", tmp_path / "o.parquet"
    table.write_parquet(path)
    strict.save(tmp_path / "strict.json")
    assert main(["predict", str(tmp_path / "strict.json"), str(path), "--out", str(out)]) == 2
    model.save(tmp_path / "drop.json")
    assert main(["predict", str(tmp_path / "drop.json"), str(path), "--out", str(out)]) == 0
    written = pl.read_parquet(out)["segment"]
    np.testing.assert_array_equal(written.is_null().to_numpy(), gaps)
    filled = fastseg.KMeans(3, random_state=0, missing="mean").fit(table, columns=["a", "b"])
    batches = list(filled.iter_assign(table))
    assert not np.concatenate([b.missing for b in batches]).any()
    assert sum(b.n_rows for b in batches) == table.height


def test_predict_transform_and_score_agree_with_the_batches(table, model):
    complete = table.drop_nulls()
    batches = list(model.iter_assign(complete))
    segment = np.concatenate([b.segment for b in batches])
    distance = np.concatenate([b.distance for b in batches])
    np.testing.assert_array_equal(model.predict(complete), segment)
    np.testing.assert_allclose(model.score(complete), -distance.sum())
    near = model.transform(complete).min(axis=1).astype(np.float64)
    np.testing.assert_allclose(near**2, distance, rtol=1e-4, atol=1e-6)


def test_unseen_levels_are_counted_once_at_the_end(table):
    model = fastseg.KMeans(2, random_state=0, categorical=["region"], missing="drop").fit(
        table.filter(pl.col("region") == "n"), columns=["a", "b"]
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = list(model.iter_assign(table, nulls="skip", batch_size=1000))
    unseen = [w for w in caught if issubclass(w.category, UnseenCategoryWarning)]
    south = int((table["region"] == "s").sum())
    assert len(unseen) == 1 and f"{south:,} rows" in str(unseen[0].message)
    assert sum(b.n_rows for b in batches) == table.height


def test_arrays_take_no_column_names(model):
    with pytest.raises(DataError, match="not an array"):
        list(model.iter_assign(np.zeros((3, 2)), keep=["id"]))
