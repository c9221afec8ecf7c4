"""The one reader: every input row once, in input order, in batches no larger than asked, the
same whatever the input (Parquet, CSV and NDJSON files, globs with differing types, hive
folders, polars and pandas frames)."""

import gzip
import re

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from fastseg.errors import DataError
from fastseg.io import text as text_files
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


@pytest.mark.parametrize("kind", ["DataFrame", "Arrow", "LazyFrame", "pandas"])
def test_frames_in_memory(frame, kind):
    if kind == "pandas":
        pytest.importorskip("pandas")
    data = {
        "DataFrame": lambda: frame,
        "Arrow": frame.to_arrow,
        "LazyFrame": frame.lazy,
        "pandas": frame.to_pandas,
    }[kind]()
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


# ----- text files: CSV, TSV, NDJSON --------------------------------------------------------
def write_text(frame, path):
    """``frame`` as the text file ``path`` names (.csv, .tsv, .ndjson, .jsonl, maybe .gz)."""
    name = str(path).removesuffix(".gz")
    if name.endswith((".ndjson", ".jsonl")):
        data = frame.write_ndjson().encode()
    else:
        data = frame.write_csv(separator="\t" if name.endswith(".tsv") else ",").encode()
    path.write_bytes(gzip.compress(data) if str(path).endswith(".gz") else data)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 4 KiB and types from the first 16 KiB: many blocks, late values."""
    monkeypatch.setattr(text_files, "TEXT_BLOCK", 1 << 12)
    monkeypatch.setattr(text_files, "TEXT_INFER", 1 << 14)


@pytest.mark.parametrize("name", ["f.csv", "f.tsv", "f.csv.gz", "f.ndjson", "f.jsonl.gz"])
def test_a_text_file_comes_back_whole_in_order_and_typed(frame, tmp_path, small_blocks, name):
    path = tmp_path / name
    write_text(frame, path)
    reader = TableReader(path, ["double = spend * 2"])
    assert reader.describe == str(path)
    assert reader.count_rows() == frame.height
    assert dict(reader.schema) == {
        **frame.schema,
        "visits": pl.Int64,  # inferred from the text
        "double": pl.Float64,
    }
    got = collected(reader, ["id", "spend", "visits", "region", "double"])
    expected = frame.with_columns(pl.col("visits").cast(pl.Int64), double=pl.col("spend") * 2)
    assert got.equals(expected.select(got.columns))


def test_csv_nulls_empty_text_and_numbers_that_do_not_parse(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text('a,name,b\n1.5,NA,\nNA,"",2\n,x,NaN\n')
    got = collected(TableReader(path), ["a", "name", "b"])
    assert got["a"].to_list() == [1.5, None, None]  # "NA", empty: missing, as in pandas
    assert got["b"].to_list() == [None, 2.0, None]  # "NaN" too: not a value to cluster
    assert got["name"].to_list() == ["NA", None, "x"]  # in text only empty is null


def test_csv_files_that_differ_a_little_and_a_hive_folder(frame, tmp_path):
    head = frame.head(800).with_columns(pl.col("spend").round(0).cast(pl.Int64))
    head = head.drop("region", "visits")
    write_text(head, tmp_path / "p1.csv")
    write_text(frame.tail(1200), tmp_path / "p2.csv")
    reader = TableReader(str(tmp_path / "p*.csv"))
    assert reader.describe == "2 CSV files" and reader.count_rows() == frame.height
    got = collected(reader, ["id", "spend", "region"])
    assert got.schema["spend"] == pl.Float64  # Int64 in one file, Float64 in the other
    assert got["id"].to_list() == frame["id"].to_list()
    assert got["region"].head(800).null_count() == 800
    with pytest.raises(DataError, match="p1.csv' has no column 'visits'"):
        reader.check_features(["visits"])
    hive = tmp_path / "hive"
    for region in ("north", "south"):
        part = hive / f"region={region}" / "year=2024"
        part.mkdir(parents=True)
        write_text(frame.filter(pl.col("region") == region).drop("region"), part / "0.csv")
    reader = TableReader(str(hive))
    assert reader.schema["region"] == pl.String and reader.schema["year"] == pl.Int64
    got = collected(reader, ["id", "region", "year"]).sort("id")
    assert got.drop("year").equals(frame.select("id", "region"))
    assert got["year"].unique().to_list() == [2024]


def test_a_column_empty_in_the_first_rows(tmp_path, small_blocks):
    """Empty in the rows the types come from: a number column if that is the whole file,
    else text (any later value reads)."""
    (tmp_path / "all.csv").write_text("a,b\n1,\n2,\n")
    assert TableReader(tmp_path / "all.csv").schema["b"] == pl.Float64
    rows = [f"{i}," for i in range(3000)] + ["3000,late"]
    (tmp_path / "late.csv").write_text("a,b\n" + "\n".join(rows) + "\n")
    reader = TableReader(tmp_path / "late.csv")
    assert reader.schema["b"] == pl.String
    assert collected(reader, ["b"])["b"].to_list() == [None] * 3000 + ["late"]


def test_a_later_value_that_does_not_parse_names_the_file_and_column(tmp_path, small_blocks):
    rows = [f"{i},x" for i in range(3000)] + ["2.5,y"]
    (tmp_path / "late.csv").write_text("n,s\n" + "\n".join(rows) + "\n")
    reader = TableReader(tmp_path / "late.csv")
    assert reader.schema["n"] == pl.Int64
    with pytest.raises(DataError, match=r"column 'n' of '.*late.csv' holds '2.5' in a row after"):
        collected(reader, ["n"])
    lines = [f'{{"n": {i}}}' for i in range(3000)] + ['{"n": "text"}']
    (tmp_path / "late.ndjson").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"column 'n' of '.*late.ndjson' holds a string"):
        collected(TableReader(tmp_path / "late.ndjson"), ["n"])


@pytest.mark.parametrize(
    "name, content, needle",
    [
        ("empty.csv", b"", "'{path}' is empty"),
        ("empty.ndjson", b"\n", "'{path}' is empty"),
        ("binary.csv", b"\x00\x01garbage\xff" * 20, "'{path}' is not CSV text in UTF-8"),
        ("parquet.csv", b"PAR1" + b"\x00" * 40, "'{path}' is a Parquet file: name it .parquet"),
        ("row.csv", b"a,b\n1,2\n3\n4,5\n", r"'{path}' has a row of 1 field\(s\) .* names 2"),
        ("semi.csv", b"a;b\n1;2\n", "'{path}' seems separated by ';'"),
        ("twice.csv", b"a,a\n1,2\n", "'{path}' has more than one column named 'a'"),
        ("text.ndjson", b"hello\n", "cannot read '{path}': JSON parse error"),
    ],
)
def test_text_files_that_cannot_be_read_are_named(tmp_path, name, content, needle):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=needle.format(path=re.escape(str(path)))) as error:
        reader = TableReader(path)
        reader.count_rows()
        collected(reader, reader.schema.names())
    assert "\n" not in str(error.value)


def test_formats_are_not_mixed_and_a_folder_reads_its_text_files(frame, tmp_path):
    write_text(frame, tmp_path / "a.csv")
    frame.write_parquet(tmp_path / "b.parquet")
    with pytest.raises(DataError, match="mixes CSV and Parquet files"):
        TableReader(str(tmp_path))
    (tmp_path / "b.parquet").unlink()
    (tmp_path / "sub").mkdir()
    write_text(frame, tmp_path / "sub" / "c.csv.gz")
    reader = TableReader(str(tmp_path))
    assert reader.describe == "2 CSV files" and reader.count_rows() == 2 * frame.height
