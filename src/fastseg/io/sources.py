"""Every kind of input, seen as one thing: a stream of float row batches with feature names.

A NumPy array is read in place. A polars DataFrame or LazyFrame, a pyarrow Table, and Parquet
(a path, glob, folder or list of paths) become a polars lazy query projected to the feature
columns, cast once to float32, and streamed in bounded batches (Parquet files are read a row
group at a time with pyarrow, frames with polars' ``collect_batches``).
"""

import difflib
import glob
import os
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DataError

MISSING_POLICIES = ("error", "drop", "mean", "median")
IMPUTING = ("mean", "median")  # rows with nulls are kept, nulls become NaN to be filled


def is_table_input(X):
    """True for inputs that are streamed through polars rather than validated as arrays."""
    if isinstance(X, (str, os.PathLike, pl.DataFrame, pl.LazyFrame, pa.Table)):
        return True
    return (
        isinstance(X, (list, tuple))
        and len(X) > 0
        and all(isinstance(p, (str, os.PathLike)) for p in X)
    )


class ArraySource:
    """A validated in-memory array: batches are views, nothing is copied."""

    def __init__(self, X):
        self.X = X
        self.dtype = X.dtype
        self.n_features = X.shape[1]
        self.feature_names = None
        self.n_dropped = 0
        self.dropped_rows = np.empty(0, dtype=np.int64)

    def count_rows(self):
        return self.X.shape[0]

    def batches(self, batch_size):
        for start in range(0, self.X.shape[0], batch_size):
            yield self.X[start : start + batch_size]

    def column_batches(self, batch_size):
        """Batches as lists of column views (what the decode pass copies into its store)."""
        for rows in self.batches(batch_size):
            yield [rows[:, j] for j in range(self.n_features)]


class FrameSource:
    """A polars lazy query over the feature columns, decoded batch by batch to float32."""

    dtype = np.dtype(np.float32)

    def __init__(
        self, lazy, columns=None, *, missing="error", describe="the data", files=None, derive=()
    ):
        if missing not in MISSING_POLICIES:
            raise DataError(f"missing={missing!r}: use one of {', '.join(MISSING_POLICIES)}")
        self.describe = describe
        self.missing = missing
        self.derived = []
        if derive:
            pairs = [d if isinstance(d, tuple) else parse_derived(d) for d in derive]
            names, expressions = zip(*pairs, strict=True)
            self.derived = list(names)
            lazy = lazy.with_columns(e.alias(n) for n, e in pairs)
            files = None  # derived columns are not in the files: polars computes them
            try:
                lazy.collect_schema()
            except pl.exceptions.PolarsError as exc:
                first = str(exc).strip().splitlines()[0]
                raise DataError(f"cannot derive {', '.join(names)}: {first}") from None
        schema = _read_schema(lazy, describe)
        self.feature_names = _check_columns(schema, columns, describe)
        self.n_features = len(self.feature_names)
        self._lazy = lazy.select(pl.col(c).cast(pl.Float32) for c in self.feature_names)
        self._full = lazy
        self._files = files
        self.n_dropped = 0
        self._seen = 0
        self._dropped = []

    def count_rows(self):
        """Rows in the input before any are dropped (Parquet answers from its metadata)."""
        with _read_errors(self.describe):
            return int(self._full.select(pl.len()).collect().item())

    @property
    def dropped_rows(self):
        """Positions, in input order, of the rows dropped for missing values."""
        return np.concatenate([np.empty(0, dtype=np.int64), *self._dropped])

    n_imputed = 0  # null values passed on as NaN, to be filled (missing="mean"/"median")

    def batches(self, batch_size):
        """Row-major float32 arrays of the feature columns, rows with nulls handled."""
        for frame in self._frames_without_nulls(batch_size):
            yield frame.to_numpy(order="c")

    def column_batches(self, batch_size):
        """The same rows as lists of float32 column arrays (no copy of columns without nulls):
        the decode pass copies them once, straight into its store."""
        for frame in self._frames_without_nulls(batch_size):
            yield [column.to_numpy() for column in frame.get_columns()]

    def _frames_without_nulls(self, batch_size):
        self.n_dropped = self._seen = self.n_imputed = 0
        self._dropped = []
        with _read_errors(self.describe):
            for frame in self._frames(batch_size):
                frame = self._handle_nulls(frame)
                if frame.height:
                    yield frame

    def _frames(self, batch_size):
        """Float32 feature frames: Parquet files through pyarrow, a row group at a time.

        Polars' streaming engine keeps several row groups in flight (about 500 MB more peak
        RSS on the 10M-row benchmark file); pyarrow's ``iter_batches`` holds one.
        """
        if self._files is None:
            yield from self._lazy.collect_batches(chunk_size=batch_size)
            return
        cast = [pl.col(c).cast(pl.Float32) for c in self.feature_names]
        for path in self._files:
            reader = pq.ParquetFile(path, pre_buffer=False)
            for batch in reader.iter_batches(batch_size=batch_size, columns=self.feature_names):
                yield pl.from_arrow(batch).select(cast)

    def lazy_all_columns(self):
        """The whole input, every column, as a lazy query (for writing labels beside it)."""
        return self._full

    def _handle_nulls(self, frame):
        first = self._seen
        self._seen += frame.height
        if self.missing in IMPUTING:
            _refuse_nan_values(frame, self.describe)  # a NaN left now would pass as missing
        nulls = frame.null_count().row(0)
        if not any(nulls):
            return frame
        if self.missing in IMPUTING:
            self.n_imputed += sum(nulls)
            return frame.fill_null(float("nan"))  # after the values' own NaN/inf check
        if self.missing == "drop":
            missing = frame.select(pl.any_horizontal(pl.all().is_null())).to_series()
            self._dropped.append(first + np.flatnonzero(missing.to_numpy()))
            kept = frame.filter(~missing)
            self.n_dropped += frame.height - kept.height
            return kept
        column = self.feature_names[next(i for i, n in enumerate(nulls) if n)]
        raise DataError(
            f"column '{column}' of {self.describe} has missing values; drop or fill those rows "
            "first (when fitting, missing='drop' drops them and 'mean' or 'median' fills them)"
        )


def _refuse_nan_values(frame, describe):
    bad = frame.select((pl.all().is_nan() | pl.all().is_infinite()).any()).row(0)
    if any(bad):
        column = frame.columns[next(i for i, b in enumerate(bad) if b)]
        raise DataError(
            f"column '{column}' of {describe} holds NaN or infinite values; remove or replace "
            "them before clustering"
        )


def open_table(X, columns=None, *, missing="error", derive=()):
    """A FrameSource for a polars frame, an Arrow table, or Parquet path(s); ``derive`` adds
    columns computed from the others ("name = SQL expression", or (name, polars expression))."""
    lazy, describe, files = table_input(X)
    return FrameSource(
        lazy, columns, missing=missing, describe=describe, files=files, derive=derive
    )


def table_input(X):
    """(lazy query, description, Parquet files or None) for a frame, Arrow table or Parquet."""
    if isinstance(X, pl.LazyFrame):
        return X, "the LazyFrame", None
    if isinstance(X, pl.DataFrame):
        return X.lazy(), "the DataFrame", None
    if isinstance(X, pa.Table):
        return pl.from_arrow(X).lazy(), "the Arrow table", None
    return _scan_parquet(X)


def parse_derived(text):
    """("name", polars expression) from "name = expression" (SQL syntax, e.g. a + b * 2)."""
    name, sep, expression = str(text).partition("=")
    name = name.strip()
    if not sep or not name.isidentifier() or not expression.strip():
        raise DataError(
            f"cannot read the derived feature '{text}': write it as name = expression, "
            "e.g. total_spend = mnt_wines + mnt_meat"
        )
    try:
        return name, pl.sql_expr(expression.strip()).alias(name)
    except pl.exceptions.PolarsError as exc:
        first = str(exc).strip().splitlines()[0]
        raise DataError(f"cannot read the derived feature '{text}': {first}") from None


def open_parquet(paths, columns=None, *, missing="error", derive=()):
    """A FrameSource over Parquet: one path, a glob, a folder (hive partitions too), or a list."""
    lazy, describe, files = _scan_parquet(paths)
    return FrameSource(
        lazy, columns, missing=missing, describe=describe, files=files, derive=derive
    )


def _scan_parquet(paths):
    files = resolve_parquet_paths(paths)
    describe = files[0] if len(files) == 1 else f"{len(files)} Parquet files"
    with _read_errors(describe):
        lazy = pl.scan_parquet(
            files,
            hive_partitioning=_is_hive(paths),
            schema=_common_schema(files) if len(files) > 1 else None,
            extra_columns="ignore",
            cast_options=pl.ScanCastOptions(integer_cast="upcast", float_cast="upcast"),
        )
    direct = None if _is_hive(paths) else files  # hive columns come from folder names: polars
    return lazy, describe, direct


def resolve_parquet_paths(paths):
    """Expand paths, globs and folders into a sorted list of existing files (or a clear error)."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files = []
    for item in items:
        item = os.fspath(item)
        if glob.has_magic(item):
            found = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p))
            if not found:
                raise DataError(f"no files match '{item}': check the pattern and the folder")
            files += found
        elif os.path.isdir(item):
            found = sorted(str(p) for p in Path(item).rglob("*.parquet") if p.is_file())
            if not found:
                raise DataError(f"folder '{item}' holds no .parquet files")
            files += found
        elif os.path.isfile(item):
            if not os.access(item, os.R_OK):
                raise DataError(f"cannot read '{item}': permission denied")
            files.append(item)
        else:
            raise DataError(f"no such file: '{item}'")
    return files


def _common_schema(files):
    """One schema for files that differ a little (Int32 here, Int64 there; an extra column).

    Each column gets the type all its files widen to, from the files' metadata only; features
    are cast to float32 anyway.
    """
    scans = [pl.scan_parquet(f).limit(0) for f in files]
    return pl.concat(scans, how="diagonal_relaxed").collect_schema()


def _is_hive(paths):
    return isinstance(paths, (str, os.PathLike)) and os.path.isdir(paths)


def _read_schema(lazy, describe):
    with _read_errors(describe):
        return lazy.collect_schema()


def _check_columns(schema, columns, describe):
    names = list(schema.names())
    if columns is None:
        columns = names
    else:
        columns = [columns] if isinstance(columns, str) else list(columns)
    if not columns:
        raise DataError(f"no feature columns selected from {describe}")
    for col in columns:
        if col not in schema:
            close = difflib.get_close_matches(col, names, n=3)
            hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
            raise DataError(
                f"column '{col}' not found in {describe}; {hint}columns are: {', '.join(names)}"
            )
    bad = [c for c in columns if not schema[c].is_numeric()]
    if bad:
        kinds = ", ".join(f"'{c}' ({schema[c]})" for c in bad)
        raise DataError(
            f"feature columns must be numeric, but {kinds} in {describe} are not; "
            "choose numeric columns as features"
        )
    if len(set(columns)) != len(columns):
        raise DataError(f"feature columns are repeated: {', '.join(columns)}")
    return columns


class _read_errors:
    """Turn polars/Arrow/OS failures while reading into one readable DataError."""

    def __init__(self, describe):
        self.describe = describe

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, DataError):
            return False
        if isinstance(exc, (pl.exceptions.PolarsError, pa.ArrowException, OSError)):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            schema_problem = isinstance(
                exc, (pl.exceptions.SchemaError, pl.exceptions.ColumnNotFoundError)
            )
            hint = (
                "do all files have the same columns?"
                if schema_problem
                else ("is it a valid Parquet file?")
            )
            raise DataError(f"cannot read {self.describe}: {first} ({hint})") from exc
        return False
