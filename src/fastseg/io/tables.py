"""Table inputs (Parquet paths, globs, folders, polars frames, Arrow tables) and the one reader
every pass uses to stream them in bounded batches.

Fit, labels, predict, profile and metrics all read through ``TableReader.frames``, so rows come
in the same order in every pass by construction, and memory follows the batch, not the table:
Parquet files are read a batch at a time with pyarrow (peak memory follows the row group),
derived columns are computed per batch by polars, in-memory frames are sliced without copying.
Polars' streaming ``collect_batches`` over a Parquet scan kept a growing backlog of decoded
batches when the consumer was slower than the reader (1.07 GB at 10M rows, 2.73 GB at 40M for
a labels pass): it is used only for a LazyFrame a user hands in.
"""

import difflib
import functools
import glob
import os
import warnings
from pathlib import Path
from urllib.parse import unquote

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DataError, DataWarning


def is_table_input(X):
    """True for inputs that are streamed through polars rather than validated as arrays."""
    if isinstance(X, (str, os.PathLike, pl.DataFrame, pl.LazyFrame, pa.Table, TableReader)):
        return True
    return (
        isinstance(X, (list, tuple))
        and len(X) > 0
        and all(isinstance(p, (str, os.PathLike)) for p in X)
    )


class TableReader:
    """A table input with its derived columns, read in bounded batches in input order.

    ``derive`` adds columns computed from the others: "name = SQL expression" strings or
    (name, polars expression) pairs (the one-hot columns).
    """

    def __init__(self, X, derive=()):
        self._frame, self._files = None, None
        if isinstance(X, (pl.DataFrame, pa.Table)):  # in memory: sliced, converted once
            self._frame = X if isinstance(X, pl.DataFrame) else pl.from_arrow(_readable(X))
            lazy = self._frame.lazy()
            self.describe = "the DataFrame" if isinstance(X, pl.DataFrame) else "the Arrow table"
        elif isinstance(X, pl.LazyFrame):
            lazy, self.describe = X, "the LazyFrame"
        else:
            lazy, self.describe, self._files = _scan_parquet(X)
        self._hive_root = os.fspath(X) if self._files is not None and _is_hive(X) else None
        pairs = [d if isinstance(d, tuple) else parse_derived(d) for d in derive or ()]
        self._derived = {name: expression.alias(name) for name, expression in pairs}
        self.derived = list(self._derived)
        self._input_schema = self.schema = _read_schema(lazy, self.describe)
        if self._files is not None:
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
        self.lazy = lazy  # the whole input, derived columns included
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

    def count_rows(self):
        """Rows in the input (Parquet answers from its metadata)."""
        if self._files is not None:
            return sum(_in_file(f, _row_count) for f in self._files)
        with self.errors():
            return int(self.lazy.select(pl.len()).collect().item())

    def check_features(self, columns):
        """The feature columns (``None``: all), checked: present, numeric, not repeated, and in
        every file of a Parquet data set (a file lacking one is named)."""
        columns = _check_columns(self.schema, columns, self.describe)
        if self._files is not None and len(self._files) > 1:
            needed = self._input_columns(columns)
            for path in self._files:
                names = {*_in_file(path, pq.read_schema).names, *self._partition_values(path)}
                lacking = [c for c in needed if c not in names]
                if lacking:
                    raise DataError(
                        f"'{path}' has no column '{lacking[0]}' (a feature; other files of "
                        "the input have it): add it there or leave that file out"
                    )
        return columns

    def frames(self, columns, batch_size):
        """Polars frames holding ``columns`` (input or derived), at most ``batch_size`` rows
        each, every input row once, in input order."""
        columns = list(columns)
        if self._files is not None:
            for path in self._files:
                with _read_errors(path):  # the file at fault named, not "4 Parquet files"
                    yield from self._file_frames(path, columns, batch_size)
            return
        with self.errors():
            if self._frame is not None:
                for start in range(0, self._frame.height, batch_size):
                    yield self._finish(self._frame.slice(start, batch_size), columns)
            else:
                query = self.lazy.select(columns)
                yield from query.collect_batches(chunk_size=batch_size)

    def errors(self):
        """A context turning a failure to read this input into one readable DataError."""
        return _read_errors(self.describe, parquet=self._files is not None)

    def _file_frames(self, path, columns, batch_size):
        """Batches of one Parquet file, read by pyarrow: only the columns needed."""
        needed = self._input_columns(columns)
        partition = self._partition_values(path)
        reader = pq.ParquetFile(path, pre_buffer=False)
        present = set(reader.schema_arrow.names)
        read = [c for c in needed if c in present and c not in partition]
        for batch in reader.iter_batches(batch_size=batch_size, columns=read):
            frame = pl.from_arrow(_readable(batch)) if read else pl.DataFrame()
            yield self._finish(self._typed(frame, needed, partition, batch.num_rows), columns)

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
            if sep and key in self._input_schema:  # hive writes a null as this folder name
                values[key] = None if value == "__HIVE_DEFAULT_PARTITION__" else unquote(value)
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
    return lazy, describe, files


def resolve_parquet_paths(paths):
    """Expand paths, globs and folders into the list of files to read (or a clear error).

    A path that exists is taken as it is before it is read as a glob (``cust[1].parquet``).
    In folders, and in what a glob matches, files and folders whose names start with ``_`` or
    ``.`` are not data (``_SUCCESS``, ``_temporary/``, ``.crc``), as pyarrow's dataset reader
    has it; a folder a glob matches is read for its parts. Each file is read once, however
    many paths name it (the same file twice, a glob and one of its files, a symlink loop):
    a ``DataWarning`` says so.
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files = []
    for item in items:
        item = os.fspath(item)
        if os.path.isfile(item):
            if not os.access(item, os.R_OK):
                raise DataError(f"cannot read '{item}': permission denied")
            files.append(item)
        elif os.path.isdir(item):
            found = _data_files(item)
            if not found:
                raise DataError(f"folder '{item}' holds no .parquet files")
            files += _without_labels_files(found, item)
        elif glob.has_magic(item):
            files += _without_labels_files(_glob_files(item), item)
        else:
            raise DataError(f"no such file: '{item}'")
    return _once_each(files)


LABELS_MARK = b"fastseg.labels"  # in the key-value metadata of the labels files fastseg writes


def _without_labels_files(files, item):
    """``files`` less the labels files fastseg wrote among them (a run that wrote its labels
    into the input folder would read them as input next time: twice the rows); a note names
    them. Named on their own, they are read."""
    labels = [f for f in files if _is_labels_file(f)]
    if not labels:
        return files
    if len(labels) == len(files):
        raise DataError(
            f"'{item}' holds only labels files written by fastseg ({', '.join(labels[:3])}): "
            "name a file on its own to read it"
        )
    _note_once(
        f"skipped {len(labels)} labels file(s) fastseg wrote in '{item}' "
        f"({', '.join(labels[:3])}): name a file on its own to read it"
    )
    return [f for f in files if f not in labels]


def _is_labels_file(path):
    stat = os.stat(path)
    return _marked_as_labels(os.path.realpath(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=65536)
def _marked_as_labels(path, mtime_ns, size):
    """(Remembered per file version: every pass resolves the input again.)"""
    try:
        metadata = pq.read_metadata(path).metadata or {}
    except (pa.ArrowException, OSError):
        return False  # not Parquet: its reader will say so
    return LABELS_MARK in metadata


def _not_data(name):
    return name.startswith(("_", "."))


def _data_files(folder):
    """The .parquet files under ``folder``, sorted, skipping ``_``/``.`` names at any depth
    (symlinked folders are not followed: no loops)."""
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not _not_data(d)]
        found += [
            os.path.join(root, n) for n in names if n.endswith(".parquet") and not _not_data(n)
        ]
    return sorted(found)


def _glob_files(pattern):
    """What a glob matches: files, and the parts of folders (``feb.parquet/``); ``_``/``.``
    names in the matched part of a path are skipped."""
    fixed = pattern[: min(i for i, ch in enumerate(pattern + "*") if ch in "*?[")]
    base = os.path.dirname(fixed)
    found = []
    for path in sorted(glob.glob(pattern, recursive=True)):
        if any(_not_data(part) for part in Path(os.path.relpath(path, base or ".")).parts):
            continue
        found += (
            [path] if os.path.isfile(path) else _data_files(path) if os.path.isdir(path) else []
        )
    if not found:
        raise DataError(f"no files match '{pattern}': check the pattern and the folder")
    return found


_SAID = set()


def _note_once(message, key=None):
    """A DataWarning, once per process for ``key`` (default the message): the passes over
    one input each resolve and read it again."""
    key = message if key is None else key
    if key not in _SAID:
        _SAID.add(key)
        warnings.warn(message, DataWarning, stacklevel=4)


def _once_each(files):
    """``files`` without repeats of one real file, in first-seen order."""
    seen, unique = set(), []
    for path in files:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            unique.append(path)
    if len(unique) < len(files):
        _note_once(
            f"{len(files) - len(unique)} of the input paths name files already read: each file "
            "is read once",
            key=tuple(files),
        )
    return unique


def _common_schema(files):
    """One schema for files that differ a little (Int32 here, Int64 there; an extra column).

    Each column gets the type all its files widen to, from the files' metadata only; features
    are cast to float32 anyway.
    """
    schemas = [_in_file(f, lambda f: pl.scan_parquet(f).collect_schema()) for f in files]
    scans = [pl.LazyFrame(schema=schema) for schema in schemas]
    return pl.concat(scans, how="diagonal_relaxed").collect_schema()


def _row_count(path):
    return pq.ParquetFile(path).metadata.num_rows


def _in_file(path, read):
    """``read(path)``, a failure naming the file."""
    with _read_errors(path):
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
    else:
        columns = [columns] if isinstance(columns, str) else list(columns)
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
        raise DataError(
            f"feature columns must be numeric, but {kinds} in {describe} are not; "
            "choose numeric columns as features"
        )
    if len(set(columns)) != len(columns):
        raise DataError(f"feature columns are repeated: {', '.join(columns)}")
    return columns


def _needs_quotes(name):
    return any(ch in name for ch in ',"') or name != name.strip()


def _as_written(name, quote="'"):
    """A column name as a list of names (``--features``) takes it: in double quotes, as in
    CSV, if it holds a comma, a quote or spaces at its ends (so a hint copied works)."""
    if _needs_quotes(name):
        name = '"' + name.replace('"', '""') + '"'
    return f"{quote}{name}{quote}"


class _read_errors:
    """Turn polars/Arrow/OS failures while reading into one readable DataError."""

    def __init__(self, describe, parquet=True):
        self.describe = describe
        self.parquet = parquet  # a file: ask whether it is valid Parquet

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
            elif self.parquet:
                hint = " (is it a valid Parquet file?)"
            raise DataError(f"cannot read {self.describe}: {first}{hint}") from exc
        return False
