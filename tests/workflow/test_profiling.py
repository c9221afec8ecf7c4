"""Segment profiles: exact statistics per segment, category shares, labels, and the command."""

import json

import numpy as np
import polars as pl
import pytest

import fastseg
from fastseg.cli import main
from fastseg.errors import DataError, DataWarning
from fastseg.workflow.profile import format_profile, profile


@pytest.fixture(scope="module")
def profile_data(tmp_path_factory):
    rng = np.random.default_rng(5)
    n = 3000
    group = rng.integers(0, 3, n)
    frame = pl.DataFrame(
        {
            "income": np.array([30_000.0, 60_000.0, 150_000.0])[group] + rng.normal(0, 5000, n),
            "age": np.array([25.0, 45.0, 60.0])[group] + rng.normal(0, 3, n),
            "region": np.array(["north", "south", "west"])[rng.integers(0, 3, n)],
            "customer_id": [f"c{i}" for i in range(n)],  # an id: no shares for it
            "vip": rng.random(n) < 0.1,
        }
    )
    frame = frame.with_columns(  # a few missing incomes: those rows are left out
        pl.when(pl.int_range(pl.len()) % 97 == 0)
        .then(None)
        .otherwise(pl.col("income"))
        .alias("income")
    )
    path = tmp_path_factory.mktemp("profile") / "c.parquet"
    frame.write_parquet(path, row_group_size=700)
    return path, frame


@pytest.fixture(scope="module")
def model(profile_data):
    path, _ = profile_data
    return fastseg.KMeans(3, random_state=0, scale="standard", missing="drop").fit(
        path, columns=["income", "age"]
    )


def expected(frame, model):
    kept = frame.drop_nulls(["income", "age"])
    return kept.with_columns(segment=pl.Series(model.predict(kept.select("income", "age"))))


def test_statistics_are_exact_per_segment(profile_data, model):
    path, frame = profile_data
    table = profile(model, path)
    data = expected(frame, model)
    assert table["size"].sum() == data.height == 3000 - 31
    for row in table.iter_rows(named=True):
        mine = data.filter(pl.col("segment") == row["segment"])
        assert row["size"] == mine.height
        assert row["share"] == pytest.approx(mine.height / data.height)
        for f in ("income", "age"):
            assert row[f"{f}_mean"] == pytest.approx(mine[f].mean(), rel=1e-12)
            assert row[f"{f}_median"] == pytest.approx(mine[f].median(), rel=1e-12)
            assert row[f"{f}_min"] == mine[f].min() and row[f"{f}_max"] == mine[f].max()
            z = (mine[f].mean() - data[f].mean()) / data[f].std(ddof=0)
            assert row[f"{f}_z"] == pytest.approx(z, rel=1e-9)
        for region in ("north", "south", "west"):
            share = (mine["region"] == region).mean()
            assert row[f"region={region}"] == pytest.approx(share)
        assert row["vip=True"] == pytest.approx(mine["vip"].mean())
    assert not any(c.startswith("customer_id=") for c in table.columns)


def test_labels_name_what_sets_a_segment_apart(profile_data, model):
    table = profile(model, profile_data[0])
    richest = table.sort("income_mean")[-1]
    assert richest["label"][0].startswith("high income") or richest["label"][0].startswith(
        "high age"
    )
    assert "high income" in richest["apart"][0] and "high age" in richest["apart"][0]
    poorest = table.sort("income_mean")[0]
    assert "low income" in poorest["apart"][0]


def test_medians_come_from_a_uniform_sample_above_its_size(profile_data, model):
    path, frame = profile_data
    small = profile(model, path, sample_size=50, random_state=1)
    data = expected(frame, model)
    for row in small.iter_rows(named=True):
        mine = data.filter(pl.col("segment") == row["segment"])["income"]
        assert mine.min() <= row["income_median"] <= mine.max()
        assert abs(row["income_median"] - mine.median()) < 4 * mine.std() / np.sqrt(50)
    assert small["income_mean"].to_list() == profile(model, path)["income_mean"].to_list()


def test_chosen_categories_and_bad_requests(profile_data, model):
    path, _ = profile_data
    table = profile(model, path, categories=["region"])
    assert [c for c in table.columns if "=" in c] == ["region=north", "region=south", "region=west"]
    with pytest.raises(DataError, match="no such column"):
        profile(model, path, categories=["nope"])
    with pytest.warns(DataWarning, match="leaves out the breakdown of 'customer_id'.*an id"):
        table = profile(model, path, categories=["region", "customer_id"])
    assert not any(c.startswith("customer_id=") for c in table.columns)
    on_array = fastseg.KMeans(2, random_state=0).fit(np.random.default_rng(0).random((50, 2)))
    with pytest.raises(DataError, match="without column names"):
        profile(on_array, path)


@pytest.mark.parametrize("how", ["table", "markdown", "csv", "json"])
def test_formats(profile_data, model, how):
    text = format_profile(profile(model, profile_data[0]), how)
    if how == "json":
        assert len(json.loads(text)) == 3
    elif how == "csv":
        assert text.splitlines()[0].startswith("segment,size,share,income_mean")
    else:
        assert "segment 0" in text and "income mean (z)" in text and "region=west" in text


def test_profile_command(profile_data, model, tmp_path, capsys):
    path, _ = profile_data
    model_path = tmp_path / "m.json"
    model.save(model_path)
    assert main(["profile", str(model_path), str(path), "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("segment 0: ")
    out = tmp_path / "p.md"
    args = ["profile", str(model_path), str(path), "--format", "markdown", "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    assert out.read_text().startswith("|  | segment 0 |")
    assert main([*args, "--quiet"]) == 2  # exists: refused without --overwrite
    assert "already exists" in capsys.readouterr().err
    assert main(["profile", str(model_path), str(path), "--categories", "nope"]) == 2
    assert "no such column" in capsys.readouterr().err


def test_a_model_of_categorical_columns_only_and_integer_categories(tmp_path):
    frame = pl.DataFrame(
        {"r": ["a", "b", "c", "a"] * 50, "year": [2023, 2024] * 100, "x": [1.0, 2.0] * 100}
    )
    path = tmp_path / "cat.parquet"
    frame.write_parquet(path)
    only = fastseg.KMeans(3, random_state=0, categorical=["r"]).fit(path, columns=[])
    table = fastseg.profile(only, path)
    assert table["size"].sum() == 200 and "r=a" in table.columns
    by_year = fastseg.KMeans(2, random_state=0, categorical=["year"]).fit(path, columns=["x"])
    assert {"year=2023", "year=2024"} <= set(fastseg.profile(by_year, path).columns)


def test_a_categorical_column_of_another_kind_than_fitted_is_refused(tmp_path):
    frame = pl.DataFrame({"r": ["a", "b", "c", "a"] * 50, "x": [1.0, 2.0] * 100})
    model = fastseg.KMeans(2, random_state=0, categorical=["r"]).fit(frame, columns=["x"])
    as_numbers = frame.with_columns(pl.col("r").rank("dense").cast(pl.Int64))
    with pytest.raises(DataError, match="'r' of the DataFrame holds integers.*learned it as text"):
        model.predict(as_numbers)
    categorical = frame.with_columns(pl.col("r").cast(pl.Categorical))
    np.testing.assert_array_equal(model.predict(categorical), model.predict(frame))


def test_profile_command_adds_the_rules(tmp_path, capsys):
    import json

    from fastseg.cli import main
    from fastseg.datasets import write_customers

    data, model = tmp_path / "c.parquet", tmp_path / "m.json"
    write_customers(data, 5000, seed=4)
    argv = ["fit", data, "--k", "3", "--features", "age,income,tenure_months", "--model", model]
    assert main([str(a) for a in [*argv, "--quiet"]]) == 0
    capsys.readouterr()
    assert main(["profile", str(model), str(data), "--rules", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "The segments as rules:" in out and "the rules agree with the model for" in out
    assert main(["profile", str(model), str(data), "--rules", "--format", "json", "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"profile", "rules"} and 0 < doc["rules"]["agreement"] <= 1
    assert main(["profile", str(model), str(data), "--rules", "--format", "csv"]) == 2
