"""Inputs beyond Parquet, through the public API: pandas frames give what the same data as a
polars frame gives, CSV and NDJSON files what the same rows in Parquet give (fit, labels,
predict, profile, select-k), with memory that follows the batch, and errors of one line."""

import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
from test_memory import PEAK

import fastseg
from fastseg.cli import main
from fastseg.datasets import FEATURES, write_customers
from fastseg.io import text as text_files

F = list(FEATURES)


@pytest.fixture(scope="module")
def pd():
    return pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def frame(customers):
    """The 20,000 generated customers (a few nulls in the features), as a polars frame."""
    return pl.read_parquet(customers)


def same_fit(a, b):
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.inertia_ == b.inertia_ and a.n_iter_ == b.n_iter_
    assert list(a.feature_names_in_) == list(b.feature_names_in_)


# ----- pandas frames ---------------------------------------------------------------------------
@pytest.mark.parametrize("nullable", [False, True], ids=["NaN", "pd.NA"])
def test_a_pandas_frame_fits_and_predicts_as_the_polars_frame(pd, frame, nullable):
    """NaN (pandas' missing value) and pd.NA in nullable Float32/Int64 columns are nulls:
    missing="drop" drops those rows, as it drops a polars frame's nulls."""
    pdf = frame.select(F).to_pandas()
    if nullable:  # income holds whole numbers (and nulls): Int64
        pdf = pdf.astype("Float32").astype({"income": "Int64"})
        assert pdf["income"].isna().any() and pdf["income"].dtype == "Int64"
    polars_fit = fastseg.KMeans(6, missing="drop", random_state=0).fit(frame.select(F))
    pandas_fit = fastseg.KMeans(6, missing="drop", random_state=0).fit(pdf)
    same_fit(pandas_fit, polars_fit)
    np.testing.assert_array_equal(pandas_fit.dropped_rows_, polars_fit.dropped_rows_)
    assert polars_fit.dropped_rows_.size > 0
    complete = pdf.dropna()  # its index no longer 0..n-1: the index is not read
    expected = polars_fit.predict(frame.select(F).drop_nulls())
    np.testing.assert_array_equal(pandas_fit.predict(complete), expected)
    with pytest.raises(fastseg.DataError, match="of the pandas DataFrame has missing values"):
        fastseg.KMeans(6).fit(pdf)


def test_pandas_columns_categorical_select_k_and_profile(pd, frame):
    pdf = frame.to_pandas()
    params = dict(missing="drop", random_state=0, categorical=["region"], scale="standard")
    pandas_fit = fastseg.KMeans(4, **params).fit(pdf, columns=F[:4])
    polars_fit = fastseg.KMeans(4, **params).fit(frame, columns=F[:4])
    same_fit(pandas_fit, polars_fit)
    assert "region=north" in pandas_fit.feature_names_in_
    assert fastseg.profile(pandas_fit, pdf).equals(fastseg.profile(polars_fit, frame))

    def scores(selection):
        return [
            {k: v for k, v in s.items() if k != "seconds"} for s in selection.to_dict()["scores"]
        ]

    chosen = fastseg.select_k(pdf, [2, 3], columns=F[:4], random_state=0)
    assert scores(chosen) == scores(fastseg.select_k(frame, [2, 3], columns=F[:4], random_state=0))


def test_a_pandas_frame_with_column_numbers_and_bad_columns(pd, blobs32):
    """A frame made from an array names its columns 0, 1, 2: read as '0', '1', '2'."""
    pdf = pd.DataFrame(blobs32)
    model = fastseg.KMeans(4, random_state=0).fit(pdf)
    assert list(model.feature_names_in_) == ["0", "1", "2"]
    same_fit(model, fastseg.KMeans(4, random_state=0).fit(pl.DataFrame(pdf)))
    np.testing.assert_array_equal(model.predict(pdf), model.labels_)
    two = fastseg.KMeans(4, random_state=0).fit(pdf, columns=[0, 2])
    assert list(two.feature_names_in_) == ["0", "2"]
    mixed = pdf.assign(note=pd.Series([1, "x"] * (len(pdf) // 2), dtype=object))
    with pytest.raises(fastseg.DataError, match="pandas DataFrame: .*column note"):
        fastseg.KMeans(4).fit(mixed, columns=[0, 1])
    with pytest.raises(fastseg.DataError, match="more than one column named '0'"):
        fastseg.KMeans(4).fit(pd.concat([pdf, pd.DataFrame({"0": pdf[0]})], axis=1))


# ----- CSV and NDJSON files --------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(frame, tmp_path_factory):
    """The customers as Parquet, CSV, TSV and NDJSON."""
    folder = tmp_path_factory.mktemp("inputs")
    frame.write_parquet(folder / "c.parquet")
    frame.write_csv(folder / "c.csv")
    frame.write_csv(folder / "c.tsv", separator="\t")
    frame.write_ndjson(folder / "c.ndjson")
    return folder


FIT = [
    *("--k", "4", "--features", ",".join(F[:5]), "--categorical", "region"),
    *("--missing", "drop", "--derive", "spend = income / (tenure_months + 1)"),
    *("--keep", "customer_id,region,gender", "--quiet"),
]


def fit_and_predict(data, folder):
    """(centres, labels, predictions) of `fastseg fit` and `fastseg predict` on ``data``."""
    model, labels, scored = (folder / f"{data.name}.{x}" for x in ("json", "l.pq", "p.pq"))
    argv = ["fit", str(data), *FIT, "--model", str(model), "--labels", str(labels)]
    assert main(argv) == 0
    assert main(["predict", str(model), str(data), "--out", str(scored), "--quiet"]) == 0
    centres = json.loads(model.read_text())["cluster_centers"]
    return centres, pl.read_parquet(labels), pl.read_parquet(scored)


@pytest.mark.parametrize("name", ["c.csv", "c.tsv", "c.ndjson"])
def test_a_text_file_gives_the_parquet_segments_labels_and_predictions(files, tmp_path, name):
    """Same options as Parquet: derived, categorical and missing features, kept columns.
    (A float32 value written as text reads back as the same float32.)"""
    centres, labels, scored = fit_and_predict(files / "c.parquet", tmp_path)
    text_centres, text_labels, text_scored = fit_and_predict(files / name, tmp_path)
    assert text_centres == centres
    assert text_labels.equals(labels)
    assert text_scored.columns == scored.columns  # every input column, in inferred types
    assert text_scored["segment"].equals(scored["segment"])
    assert text_scored["customer_id"].equals(scored["customer_id"])


def test_profile_and_select_k_of_a_csv(files, frame, capsys):
    model = fastseg.KMeans(4, random_state=0, missing="drop").fit(frame, columns=F)
    as_polars_reads_it = pl.read_csv(files / "c.csv")  # the same values: float64
    assert fastseg.profile(model, files / "c.csv").equals(
        fastseg.profile(model, as_polars_reads_it)
    )
    assert (
        main(["select-k", str(files / "c.csv"), "--k-range", "2:3", "--features", "age,income"])
        == 0
    )
    assert "on 19,960 rows (40 left out: missing features)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, content, needle",
    [
        ("bad.csv", b"PAR1\x00\x00garbage", "is a Parquet file: name it .parquet"),
        ("bad.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not CSV text in UTF-8"),
        ("bad.csv", b"age,income\n1,2\n3,4,5\n", "has a row of 3 field(s)"),
        ("bad.csv", b"", "is empty"),
        ("bad.csv", b"age,income\n", "has no rows"),
        ("bad.ndjson", b'{"age": 1, "income": 2}\n{"age": \n', "cannot read"),
        ("bad.ndjson", b"age,income\n1,2\n", "cannot read"),
    ],
)
def test_text_files_that_cannot_be_read_are_one_line_naming_the_file(
    tmp_path, capsys, name, content, needle
):
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["fit", str(path), "--k", "2", "--features", "age,income", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert needle in err and str(path) in err, err


def test_a_later_value_that_does_not_parse_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(text_files, "TEXT_INFER", 1 << 16)  # the types from the first 64 KiB
    rows = "".join(f"{i},{i % 7}\n" for i in range(30_000))
    (tmp_path / "late.csv").write_text("age,income\n" + rows + "41.5,3\n")
    argv = ["fit", str(tmp_path / "late.csv"), "--k", "2", "--features", "age,income"]
    assert main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fastseg: error: column 'age' of ") and "late.csv' holds '41.5'" in err


# ----- memory follows the batch -----------------------------------------------------------------
def peak_mb(*argv):
    """Peak RSS (MB) of a `fastseg ...` process reading batches of 32,768 rows (the default
    262,144 would make the smaller file a single batch)."""
    script = "import fastseg.config; fastseg.config.batch_size = 1 << 15; " + PEAK
    done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1]) / 1024


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM is Linux's")
def test_reading_a_csv_holds_the_same_memory_for_four_times_the_rows(tmp_path):
    """pyarrow parses a CSV a block at a time (and a few blocks ahead): the peak RSS of a
    labels pass and of a fit does not grow with the file."""
    write_customers(tmp_path / "c.parquet", 200_000, seed=8)
    rows = pl.read_parquet(tmp_path / "c.parquet")
    rows.write_csv(tmp_path / "small.csv")
    pl.concat([rows] * 4).write_csv(tmp_path / "large.csv")
    model = tmp_path / "m.json"
    features = ["--features", "age,income,monthly_charge,tenure_months", "--quiet"]
    fit = ["--k", "5", "--max-iter", "5", "--memory-budget", "16MB", *features]
    assert main(["fit", str(tmp_path / "small.csv"), *fit, "--model", str(model)]) == 0
    peaks = {}
    for size in ("small", "large"):
        data, out = str(tmp_path / f"{size}.csv"), str(tmp_path / f"{size}.pq")
        peaks["predict", size] = peak_mb("predict", str(model), data, "--out", out, "--quiet")
        peaks["fit", size] = peak_mb("fit", data, *fit, "--labels", out, "--overwrite")
    for run in ("predict", "fit"):  # 4x the rows, within 15 % of the memory (as Parquet's)
        assert peaks[run, "large"] <= 1.15 * peaks[run, "small"], peaks


@pytest.mark.parametrize("shape", [(1, 1), (3, 8), (1000, 3), (4097, 8), (2000, 33), (5, 0)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_column_extremes_of_an_array_are_numpys(shape, order):
    """The array tap's fast column min and max equal NumPy's, NaN included."""
    from fastseg.io.sources import column_extreme

    rng = np.random.default_rng(shape[0])
    X = np.asarray(rng.standard_normal(shape).astype(np.float32), order=order)
    X[rng.random(shape) < 0.001] = np.nan
    for reduce in (np.min, np.max):
        if shape[0]:
            np.testing.assert_array_equal(column_extreme(X, reduce), reduce(X, axis=0))
