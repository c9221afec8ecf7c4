"""The one reader: every input row once, in input order, in batches no larger than asked, the
same whatever the input (files, globs with differing types, hive folders, frames)."""

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from fastseg.io.tables import TableReader

BATCH = 300


def collected(reader, columns, batch_size=BATCH):
    frames = list(reader.frames(columns, batch_size))
    assert all(f.height <= batch_size for f in frames)
    return pl.concat(frames)


@pytest.fixture(scope="module")
def frame():
    n = 2000
    rng = np.random.default_rng(0)
    return pl.DataFrame(
        {
            "id": np.arange(n),
            "spend": rng.gamma(2, 50, n),
            "visits": rng.integers(0, 30, n).astype(np.int32),
            "region": np.array(["north", "south"])[rng.integers(0, 2, n)],
        }
    )


def test_a_file_in_row_groups_comes_back_whole_and_in_order(frame, tmp_path):
    path = tmp_path / "f.parquet"
    frame.write_parquet(path, row_group_size=700)  # batches cross row groups
    reader = TableReader(path)
    assert reader.count_rows() == frame.height
    assert collected(reader, ["id", "visits"]).equals(frame.select("id", "visits"))


def test_a_glob_of_files_that_differ_a_little(frame, tmp_path):
    frame.head(800).with_columns(pl.col("visits").cast(pl.Int16)).drop("region").write_parquet(
        tmp_path / "p1.parquet"
    )
    frame.tail(1200).with_columns(extra=pl.lit(1)).write_parquet(tmp_path / "p2.parquet")
    got = collected(TableReader(str(tmp_path / "p*.parquet")), ["id", "visits", "region"])
    assert got["id"].to_list() == frame["id"].to_list()
    assert got.schema["visits"] == pl.Int32  # widened to the type all files share
    assert got["region"].head(800).null_count() == 800  # the first file has no region
    assert got["region"].tail(1200).to_list() == frame["region"].tail(1200).to_list()


def test_derived_columns_are_computed_per_batch(frame, tmp_path):
    path = tmp_path / "f.parquet"
    frame.write_parquet(path, row_group_size=500)
    reader = TableReader(path, ["per_visit = spend / (visits + 1)"])
    got = collected(reader, ["id", "per_visit"])
    expected = frame.select("id", per_visit=pl.col("spend") / (pl.col("visits") + 1))
    assert got.equals(expected)
    assert "per_visit" in reader.schema and reader.derived == ["per_visit"]


def test_hive_partition_columns_come_from_the_folder_names(frame, tmp_path):
    for region in ("north", "south"):
        part = tmp_path / f"region={region}"
        part.mkdir()
        frame.filter(pl.col("region") == region).drop("region").write_parquet(part / "0.parquet")
    got = collected(TableReader(str(tmp_path)), ["id", "region"]).sort("id")
    assert got.equals(frame.select("id", "region"))


@pytest.mark.parametrize("kind", ["DataFrame", "Arrow", "LazyFrame"])
def test_frames_in_memory(frame, kind):
    data = {"DataFrame": frame, "Arrow": frame.to_arrow(), "LazyFrame": frame.lazy()}[kind]
    reader = TableReader(data, ["double = spend * 2"])
    assert reader.count_rows() == frame.height
    got = collected(reader, ["id", "double"])
    assert got.equals(frame.select("id", double=pl.col("spend") * 2))
    assert isinstance(frame.to_arrow(), pa.Table)


@pytest.mark.parametrize("text", ["x = spend / avg(spend)", "x = spend - min(spend)"])
def test_a_derived_feature_must_come_from_its_own_row(frame, text):
    from fastseg.errors import DataError

    with pytest.raises(DataError, match="not computed from each row alone"):
        TableReader(frame, [text])
    TableReader(frame, ["x = spend / (visits + 1) * 2"])  # row-wise: fine


def test_decimal256_columns_are_read_as_128_bit_decimals_or_floats(tmp_path):
    """BigQuery's BIGNUMERIC is Decimal256: Polars panics on it."""
    import decimal
    import warnings

    import pyarrow.parquet as pq

    from fastseg.errors import DataWarning

    values = [decimal.Decimal(i) / 4 for i in range(100)]
    table = pa.table(
        {
            "narrow": pa.array(values, type=pa.decimal256(20, 2)),
            "wide": pa.array(values, type=pa.decimal256(76, 38)),
        }
    )
    pq.write_table(table, tmp_path / "d.parquet")
    for data in (tmp_path / "d.parquet", table):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = collected(TableReader(data), ["narrow", "wide"], batch_size=30)
        assert got["narrow"].dtype == pl.Decimal(20, 2)
        assert got["wide"].dtype == pl.Float64
        assert got["wide"].to_list() == [float(v) for v in values]
        if data is not table:
            assert any(issubclass(w.category, DataWarning) for w in caught)


def test_a_file_lacking_a_feature_is_named(frame, tmp_path):
    from fastseg.errors import DataError

    frame.write_parquet(tmp_path / "a.parquet")
    frame.drop("visits").write_parquet(tmp_path / "b.parquet")
    reader = TableReader(str(tmp_path))
    assert reader.check_features(["spend"]) == ["spend"]
    with pytest.raises(DataError, match="b.parquet' has no column 'visits'"):
        reader.check_features(["spend", "visits"])
    derived = TableReader(str(tmp_path), ["v = visits * 2"])
    with pytest.raises(DataError, match="no column 'visits'"):
        derived.check_features(["v"])
