"""Table inputs (Parquet, CSV and NDJSON paths, globs, folders; polars and pandas frames, Arrow
tables) and the one reader every pass uses to stream them in bounded batches.

Fit, labels, predict, profile and metrics all read through ``TableReader.frames``, so rows come
in the same order in every pass by construction, and memory follows the batch, not the table:
Parquet files are read a batch at a time with pyarrow (peak memory follows the row group),
CSV and NDJSON files by pyarrow's streaming parsers (``io.text``), derived columns are computed
per batch by polars, in-memory frames are sliced without copying (a pandas frame becomes Arrow
column by column first). Polars' streaming ``collect_batches`` over a Parquet scan kept a
growing backlog of decoded batches when the consumer was slower than the reader (1.07 GB at
10M rows, 2.73 GB at 40M for a labels pass): it is used only for a LazyFrame a user hands in.
Which files a path, glob or folder names is ``io.paths``'s to say.
"""

import copy
import difflib
import os
import sys
from pathlib import Path
from urllib.parse import unquote

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DataError
from .paths import (
    HIVE_NULL,
    _note_once,
    _one_format,
    file_format,
    per_file_version,
    resolve_input_paths,
)
from .text import _empty_as_null, _hive_kinds, _named_as, _text_batches, _text_rows, text_schema


def is_table_input(X):
    """True for inputs that are streamed through polars rather than validated as arrays."""
    if isinstance(X, (str, os.PathLike, pl.DataFrame, pl.LazyFrame, pa.Table, TableReader)):
        return True
    if is_pandas_frame(X):
        return True
    return (
        isinstance(X, (list, tuple))
        and len(X) > 0
        and all(isinstance(p, (str, os.PathLike)) for p in X)
    )


def is_pandas_frame(X):
    """True for a pandas DataFrame (pandas is not imported for the question: 0.3 s)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(X, pandas.DataFrame)


class TableReader:
    """A table input with its derived columns, read in bounded batches in input order.

    ``derive`` adds columns computed from the others: "name = SQL expression" strings or
    (name, polars expression) pairs (the one-hot columns).
    """

    def __init__(self, X, derive=()):
        self._frame, self._files, self._format = None, None, None
        self._rows = None  # (start, stop): only those input rows (``within``)
        if is_pandas_frame(X):  # through Arrow, column by column
            self._frame = from_pandas(X)
            lazy, self.describe = self._frame.lazy(), "the pandas DataFrame"
        elif isinstance(X, (pl.DataFrame, pa.Table)):  # in memory: sliced, converted once
            self._frame = X if isinstance(X, pl.DataFrame) else pl.from_arrow(_readable(X))
            lazy = self._frame.lazy()
            self.describe = "the DataFrame" if isinstance(X, pl.DataFrame) else "the Arrow table"
        elif isinstance(X, pl.LazyFrame):
            lazy, self.describe = X, "the LazyFrame"
        else:
            lazy, self.describe, self._files, self._format = _scan_files(X)
        self._hive_root = os.fspath(X) if self._files is not None and _is_hive(X) else None
        self.in_memory = self._frame is not None  # a polars, pandas or Arrow table in RAM
        pairs = [d if isinstance(d, tuple) else parse_derived(d) for d in derive or ()]
        self._derived = {name: expression.alias(name) for name, expression in pairs}
        self.derived = list(self._derived)
        self._input_schema = self.schema = _read_schema(lazy, self.describe)
        if self._format == "Parquet":
            lazy = self._decimals_as_floats(lazy)
        clash = [name for name in self.derived if name in self._input_schema]
        if clash:
            raise DataError(
                f"the derived feature '{clash[0]}' has the name of a column of {self.describe}: "
                "give it another name"
            )
        if pairs:
            lazy = lazy.with_columns(self._derived.values())
            try:
                self.schema = lazy.collect_schema()
            except pl.exceptions.PolarsError as exc:
                first = str(exc).strip().splitlines()[0]
                raise DataError(f"cannot derive {', '.join(self.derived)}: {first}") from None
        self.lazy = lazy  # the input with derived columns (of text files: their schema only)
        # the user's own ("name = SQL"; the one-hot pairs are ours) must be row-wise
        user = [
            n for d, (n, _) in zip(derive or (), pairs, strict=True) if not isinstance(d, tuple)
        ]
        if user:
            self._check_row_wise(user)

    def _check_row_wise(self, names):
        """Refuse a derived feature that is not computed from its own row alone (an aggregate
        or a window: ``income / avg(income)``): predict could not replay it on other rows.
        Seen by computing it on the first rows at once and in two parts."""
        roots = self._input_columns(names)
        sample = next(iter(self.frames(roots, 64)), pl.DataFrame())
        if sample.height < 2:
            return
        expressions = [self._derived[n] for n in names]
        whole = sample.select(expressions)
        half = sample.height // 2
        parts = pl.concat(
            [sample.head(half).select(expressions), sample.slice(half).select(expressions)]
        )
        for name in names:
            if not whole[name].equals(parts[name]):
                raise DataError(
                    f"the derived feature '{name}' is not computed from each row alone (an "
                    "aggregate or a window, such as avg() or over()): predict could not replay "
                    "it on other rows; derive it from the row's own columns"
                )

    def within(self, start, stop):
        """This reader over input rows [start, stop) only (a Dask fragment)."""
        part = copy.copy(self)
        part._rows = (start, stop)
        return part

    def count_rows(self):
        """Rows in the input (Parquet answers from its metadata; text files are counted in a
        pass that parses them, once per file version)."""
        if self._rows is not None:
            return self._rows[1] - self._rows[0]
        if self._files is not None:
            count = _row_count if self._format == "Parquet" else _text_rows
            return sum(_in_file(f, count, self._format) for f in self._files)
        with self.errors():
            return int(self.lazy.select(pl.len()).collect().item())

    def check_features(self, columns):
        """The feature columns (``None``: all), checked: present, numeric, not repeated, and in
        every file of a data set (a file lacking one is named)."""
        columns = _check_columns(self.schema, columns, self.describe)
        if self._files is not None and len(self._files) > 1:
            needed = self._input_columns(columns)
            for path in self._files:
                names = {*self._file_columns(path), *self._partition_values(path)}
                lacking = [c for c in needed if c not in names]
                if lacking:
                    raise DataError(
                        f"'{path}' has no column '{lacking[0]}' (a feature; other files of "
                        "the input have it): add it there or leave that file out"
                    )
        return columns

    def frames(self, columns, batch_size, rows=None):
        """Polars frames holding ``columns`` (input or derived), at most ``batch_size`` rows
        each, every input row once, in input order; ``rows`` = (start, stop): only those
        input rows (a Dask task's fragment: Parquet reads just the row groups holding them)."""
        columns = list(columns)
        rows = rows or self._rows
        if self._files is not None:
            first = 0  # the input row each file starts at
            for path in self._files:
                with _read_errors(path, self._format):  # the file at fault named, not "4 files"
                    within = None
                    if rows is not None:
                        n = self._rows_in(path)
                        within = (max(rows[0] - first, 0), min(rows[1] - first, n))
                        first += n
                        if within[0] >= within[1]:
                            continue
                    yield from self._file_frames(path, columns, batch_size, within)
            return
        with self.errors():
            if self._frame is not None:
                start, stop = rows or (0, self._frame.height)
                for s in range(start, stop, batch_size):
                    frame = self._frame.slice(s, min(batch_size, stop - s))
                    yield self._finish(frame, columns)
            else:
                query = self.lazy.select(columns)
                if rows is not None:
                    query = query.slice(rows[0], rows[1] - rows[0])
                yield from query.collect_batches(chunk_size=batch_size)

    def errors(self):
        """A context turning a failure to read this input into one readable DataError."""
        return _read_errors(self.describe, self._format)

    def _rows_in(self, path):
        return (_row_count if self._format == "Parquet" else _text_rows)(path)

    def _file_frames(self, path, columns, batch_size, within=None):
        """Batches of one file, read by pyarrow: only the columns needed (and with ``within``
        = (start, stop), only those rows of the file)."""
        needed = self._input_columns(columns)
        partition = self._partition_values(path)
        if self._format == "Parquet":
            parquet = pq.ParquetFile(path, pre_buffer=False)
            present = set(parquet.schema_arrow.names)
        else:
            present = set(text_schema(path).names)
        read = [c for c in needed if c in present and c not in partition]
        skip, groups = 0, None
        if within is not None and self._format == "Parquet":
            skip, groups = _row_groups(parquet.metadata, *within)
            within = (skip, skip + within[1] - within[0])
        batches = (
            parquet.iter_batches(batch_size=batch_size, columns=read, row_groups=groups)
            if self._format == "Parquet"
            else _text_batches(path, read, batch_size)
        )
        for batch in _rows_within(batches, within):
            frame = pl.from_arrow(_readable(batch)) if read else pl.DataFrame()
            if self._format == "CSV":
                frame = _empty_as_null(frame)
            yield self._finish(self._typed(frame, needed, partition, batch.num_rows), columns)

    def _file_columns(self, path):
        """The names of the columns one file holds (from its metadata, or its first block)."""
        if self._format == "Parquet":
            return _in_file(path, _parquet_columns)
        return _in_file(path, text_schema, self._format).names

    def _typed(self, frame, needed, partition, height):
        """The batch with every needed input column, in the type all files share (a column a
        file lacks is null; a partition column is its folder's value)."""
        fill = []
        for c in needed:
            kind = self._input_schema[c]
            if c in partition:
                fill.append(pl.lit(partition[c]).cast(kind).alias(c))
            elif c not in frame.columns:
                fill.append(pl.lit(None, dtype=kind).alias(c))
            elif frame.schema[c] != kind:
                fill.append(pl.col(c).cast(kind))
        if frame.width == 0:
            frame = pl.DataFrame({"__row": pl.zeros(height, eager=True)})
            return frame.with_columns(fill).drop("__row")
        return frame.with_columns(fill) if fill else frame

    def _finish(self, frame, columns):
        """The derived columns among ``columns`` computed on this batch, then only ``columns``."""
        wanted = [e for name, e in self._derived.items() if name in columns]
        return (frame.with_columns(wanted) if wanted else frame).select(columns)

    def _input_columns(self, columns):
        """Input columns that ``columns`` need: themselves, or what their derivations read."""
        needed = []
        for c in columns:
            needed += self._derived[c].meta.root_names() if c in self._derived else [c]
        return list(dict.fromkeys(needed))

    def _partition_values(self, path):
        """{column: text} from the key=value folders of a hive-partitioned data set."""
        if self._hive_root is None:
            return {}
        relative = os.path.relpath(os.path.dirname(path), self._hive_root)
        values = {}
        for part in Path(relative).parts:
            key, sep, value = part.partition("=")
            if sep and key in self._input_schema:
                values[key] = None if value == HIVE_NULL else unquote(value)
        return values

    def _decimals_as_floats(self, lazy):
        """Decimal columns wider than Polars holds (Decimal256: BigQuery's BIGNUMERIC) are
        read as Float64 (about 16 significant digits), with a note; those that fit 38 digits
        as Polars decimals."""
        wide = [c for c, kind in self._input_schema.items() if _too_wide(kind)]
        if not wide:
            return lazy
        _note_once(
            f"column(s) {', '.join(wide)} of {self.describe} hold decimals of more than 38 "
            "digits: read as Float64 (about 16 significant digits)"
        )
        self._input_schema = self.schema = pl.Schema(
            {c: pl.Float64 if c in wide else kind for c, kind in self._input_schema.items()}
        )
        return lazy.with_columns(pl.col(wide).cast(pl.Float64))


def _too_wide(kind):
    return isinstance(kind, pl.Decimal) and (kind.precision or 0) > 38


def _readable(data):
    """An Arrow table or batch that Polars can take: Decimal256 columns (Polars panics on
    them) as 128-bit decimals where 38 digits hold them, else as float64 (through their text:
    Arrow's direct cast is not correctly rounded, 0.25 became 0.24999999999999997)."""
    columns, fields = [], []
    for field, column in zip(data.schema, data.columns, strict=True):
        t = field.type
        if pa.types.is_decimal256(t):
            narrow = t.precision <= 38
            column = (
                column.cast(pa.decimal128(t.precision, t.scale))
                if narrow
                else column.cast(pa.string()).cast(pa.float64())
            )
            field = field.with_type(column.type)
        columns.append(column)
        fields.append(field)
    if fields == list(data.schema):
        return data
    return type(data).from_arrays(columns, schema=pa.schema(fields))


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


def _scan_files(paths):
    """(lazy frame, description, files, format) of the files ``paths`` name: Parquet scanned
    by polars; CSV and NDJSON by their schema (``text_schema``), read later by pyarrow."""
    files = resolve_input_paths(paths)
    kind = _one_format(files, paths)
    describe = files[0] if len(files) == 1 else f"{len(files)} {kind} files"
    if kind != "Parquet":
        hive_root = os.fspath(paths) if _is_hive(paths) else None
        return pl.LazyFrame(schema=_text_files_schema(files, hive_root)), describe, files, kind
    with _read_errors(describe):
        lazy = pl.scan_parquet(
            files,
            hive_partitioning=_is_hive(paths),
            schema=_common_schema(files) if len(files) > 1 else None,
            extra_columns="ignore",
            cast_options=pl.ScanCastOptions(integer_cast="upcast", float_cast="upcast"),
        )
    return lazy, describe, files, kind


def _text_files_schema(files, hive_root):
    """The polars schema of text files: their columns in the types all their files widen to
    (as ``_common_schema`` has it for Parquet), then the key=value folders of a
    hive-partitioned folder, typed from their values."""
    arrow = [_in_file(f, text_schema, file_format(f)) for f in files]
    # (an empty table from batches: Schema.empty_table() imports pandas, 0.3 s)
    empty = [pl.from_arrow(pa.Table.from_batches([], schema=a)) for a in arrow]
    columns = dict(_widened([frame.schema for frame in empty]))
    if hive_root is not None:
        for key, kind in _hive_kinds(hive_root, files).items():
            columns.setdefault(key, kind)
    return pl.Schema(columns)


def _common_schema(files):
    """One schema for files that differ a little (Int32 here, Int64 there; an extra column).

    Each column gets the type all its files widen to, from the files' metadata only; features
    are cast to float32 anyway.
    """
    schemas = [_in_file(f, lambda f: pl.scan_parquet(f).collect_schema()) for f in files]
    return _widened(schemas)


def _widened(schemas):
    """The schema that ``schemas`` widen to: every column, each in a type all its files'
    types widen to (Int64 and Float64: Float64; a number and text: text)."""
    if len(schemas) == 1:
        return pl.Schema(schemas[0])
    scans = [pl.LazyFrame(schema=schema) for schema in schemas]
    return pl.concat(scans, how="diagonal_relaxed").collect_schema()


def _row_groups(metadata, start, stop):
    """The row groups holding rows [start, stop) of a Parquet file, and the rows of the first
    of them before ``start``."""
    groups, first, skip = [], 0, 0
    for g in range(metadata.num_row_groups):
        n = metadata.row_group(g).num_rows
        if first < stop and first + n > start:
            if not groups:
                skip = start - first
            groups.append(g)
        first += n
    return skip, groups


def _rows_within(batches, within):
    """Arrow batches cut to rows [start, stop) of their concatenation (None: all)."""
    if within is None:
        yield from batches
        return
    seen = 0
    for batch in batches:
        lo, hi = max(within[0] - seen, 0), min(within[1] - seen, batch.num_rows)
        seen += batch.num_rows
        if lo < hi:
            yield batch.slice(lo, hi - lo)
        if seen >= within[1]:
            return


def _row_count(path):
    return per_file_version("rows", path, lambda p: pq.ParquetFile(p).metadata.num_rows)


def _parquet_columns(path):
    return per_file_version("columns", path, lambda p: pq.read_schema(p).names)


def _in_file(path, read, kind="Parquet"):
    """``read(path)``, a failure naming the file."""
    with _read_errors(path, kind):
        return read(path)


def _is_hive(paths):
    return isinstance(paths, (str, os.PathLike)) and os.path.isdir(paths)


def _read_schema(lazy, describe):
    with _read_errors(describe):
        return lazy.collect_schema()


def _check_columns(schema, columns, describe):
    names = list(schema.names())
    if columns is None:
        columns = names
    else:  # (a pandas frame's column 0 is named '0')
        columns = [columns] if isinstance(columns, str) else [str(c) for c in columns]
    if not columns:
        raise DataError(f"no feature columns selected from {describe}")
    for col in columns:
        if col not in schema:
            close = difflib.get_close_matches(col, names, n=3)
            hint = f"did you mean {', '.join(_as_written(c) for c in close)}? " if close else ""
            quoting = (
                " (a name holding a comma or spaces at its ends is written in double quotes)"
                if any(_needs_quotes(c) for c in names)
                else ""
            )
            raise DataError(
                f"column '{col}' not found in {describe}; {hint}columns are: "
                f"{', '.join(_as_written(c, quote='') for c in names)}{quoting}"
            )
    bad = [c for c in columns if not schema[c].is_numeric()]
    if bad:
        kinds = ", ".join(f"'{c}' ({schema[c]})" for c in bad)
        categories = [c for c in bad if _category_like(schema[c])]
        hint = (
            f"; to segment on a text column such as '{categories[0]}', name it in --categorical "
            "(categorical=[...] in Python)"
            if categories
            else "; choose numeric columns as features"
        )
        raise DataError(f"feature columns must be numeric, but {kinds} in {describe} are not{hint}")
    if len(set(columns)) != len(columns):
        raise DataError(f"feature columns are repeated: {', '.join(columns)}")
    return columns


def _category_like(kind):
    return isinstance(kind, (pl.String, pl.Categorical, pl.Enum, pl.Boolean))


def _needs_quotes(name):
    return any(ch in name for ch in ',"') or name != name.strip()


def _as_written(name, quote="'"):
    """A column name as a list of names (``--features``) takes it: in double quotes, as in
    CSV, if it holds a comma, a quote or spaces at its ends (so a hint copied works)."""
    if _needs_quotes(name):
        name = '"' + name.replace('"', '""') + '"'
    return f"{quote}{name}{quote}"


# ----- pandas frames -------------------------------------------------------------------------
def from_pandas(frame):
    """A pandas DataFrame as a polars one, through Arrow column by column (no row-wise copy).
    NaN, None and pd.NA are nulls (pandas' missing values); the index is left out
    (``reset_index()`` makes it a column); column names become text (0: '0')."""
    with _read_errors("the pandas DataFrame", None):
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            parts = [str(a) for a in exc.args] or [type(exc).__name__]
            problem = ": ".join(reversed(parts)) if len(parts) == 2 else parts[0]
            hint = ""
            if "Conversion failed for column" in problem:
                hint = " (a column of mixed types: convert it, e.g. with .astype(str), or drop it)"
            raise DataError(f"cannot read the pandas DataFrame: {problem}{hint}") from None
        names = table.column_names
        repeated = [n for n in dict.fromkeys(names) if names.count(n) > 1]
        if repeated:
            raise DataError(
                f"the pandas DataFrame has more than one column named '{repeated[0]}' (column "
                "names are read as text): rename them"
            )
        return pl.from_arrow(_readable(table.replace_schema_metadata(None)))


class _read_errors:
    """Turn polars/Arrow/OS failures while reading into one readable DataError."""

    def __init__(self, describe, kind="Parquet"):
        self.describe = describe
        self.kind = kind  # files: ask whether they are valid files of that format

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
            hint = ""
            if schema_problem:
                hint = " (do all files have the same columns?)"
            elif self.kind is not None:
                hint = f" (is it a valid {self.kind} file?{_named_as(self.describe)})"
            raise DataError(f"cannot read {self.describe}: {first}{hint}") from exc
        return False
