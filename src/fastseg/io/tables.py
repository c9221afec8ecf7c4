"""Table inputs (Parquet, CSV and NDJSON paths, globs, folders; polars and pandas frames, Arrow
tables) and the one reader every pass uses to stream them in bounded batches.

Fit, labels, predict, profile and metrics all read through ``TableReader.frames``, so rows come
in the same order in every pass by construction, and memory follows the batch, not the table:
Parquet files are read a batch at a time with pyarrow (peak memory follows the row group),
CSV and NDJSON files by pyarrow's streaming parsers in blocks of ``TEXT_BLOCK`` bytes, derived
columns are computed per batch by polars, in-memory frames are sliced without copying (a pandas
frame becomes Arrow column by column first). Polars' streaming ``collect_batches`` over a
Parquet scan kept a growing backlog of decoded batches when the consumer was slower than the
reader (1.07 GB at 10M rows, 2.73 GB at 40M for a labels pass): it is used only for a LazyFrame
a user hands in.
"""

import difflib
import functools
import glob
import os
import re
import sys
import warnings
from pathlib import Path
from urllib.parse import unquote

import polars as pl
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from ..errors import DataError, DataWarning


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

    def count_rows(self):
        """Rows in the input (Parquet answers from its metadata; text files are counted in a
        pass that parses them, once per file version)."""
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

    def frames(self, columns, batch_size):
        """Polars frames holding ``columns`` (input or derived), at most ``batch_size`` rows
        each, every input row once, in input order."""
        columns = list(columns)
        if self._files is not None:
            for path in self._files:
                with _read_errors(path, self._format):  # the file at fault named, not "4 files"
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
        return _read_errors(self.describe, self._format)

    def _file_frames(self, path, columns, batch_size):
        """Batches of one file, read by pyarrow: only the columns needed."""
        needed = self._input_columns(columns)
        partition = self._partition_values(path)
        if self._format == "Parquet":
            parquet = pq.ParquetFile(path, pre_buffer=False)
            present = set(parquet.schema_arrow.names)
        else:
            present = set(text_schema(path).names)
        read = [c for c in needed if c in present and c not in partition]
        batches = (
            parquet.iter_batches(batch_size=batch_size, columns=read)
            if self._format == "Parquet"
            else _text_batches(path, read, batch_size)
        )
        for batch in batches:
            frame = pl.from_arrow(_readable(batch)) if read else pl.DataFrame()
            if self._format == "CSV":
                frame = _empty_as_null(frame)
            yield self._finish(self._typed(frame, needed, partition, batch.num_rows), columns)

    def _file_columns(self, path):
        """The names of the columns one file holds (from its metadata, or its first block)."""
        if self._format == "Parquet":
            return _in_file(path, pq.read_schema).names
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


def _one_format(files, paths):
    """The format all ``files`` share, or an error naming two that differ: one input is
    read in one format (a CSV's inferred types and a Parquet file's are not the same)."""
    kinds = {}
    for path in files:
        kinds.setdefault(file_format(path), path)
    if len(kinds) > 1:
        (a, first), (b, second) = list(kinds.items())[:2]
        named = f"'{os.fspath(paths)}'" if isinstance(paths, (str, os.PathLike)) else "the input"
        raise DataError(
            f"{named} mixes {a} and {b} files ('{first}', '{second}'): read one format at a "
            "time, e.g. with a glob such as 'data/*.csv', or convert them to one"
        )
    return next(iter(kinds))


def resolve_input_paths(paths):
    """Expand paths, globs and folders into the list of files to read (or a clear error).

    Folders are read for their data files: ``.parquet``, and the text formats of
    ``TEXT_FORMATS`` (compressed or not); a file named on its own or matched by a glob is
    read whatever its name (by ``file_format``: any other name is taken for Parquet).

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
                raise DataError(
                    f"folder '{item}' holds no .parquet, .csv, .tsv, .ndjson or .jsonl files"
                )
            files += _without_labels_files(found, item)
        elif glob.has_magic(item):
            files += _without_labels_files(_glob_files(item), item)
        else:
            raise DataError(f"no such file: '{item}'")
    return _once_each(files)


resolve_parquet_paths = resolve_input_paths  # its name before CSV and NDJSON were read


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
    if file_format(path) != "Parquet":
        return False  # fastseg writes its labels as Parquet
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
    """The data files under ``folder`` (``.parquet``, CSV, NDJSON), sorted, skipping ``_``/``.``
    names at any depth (symlinked folders are not followed: no loops)."""
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not _not_data(d)]
        found += [os.path.join(root, n) for n in names if _is_data_name(n) and not _not_data(n)]
    return sorted(found)


def _is_data_name(name):
    return name.endswith(".parquet") or file_format(name) != "Parquet"


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
    return _widened(schemas)


def _widened(schemas):
    """The schema that ``schemas`` widen to: every column, each in a type all its files'
    types widen to (Int64 and Float64: Float64; a number and text: text)."""
    if len(schemas) == 1:
        return pl.Schema(schemas[0])
    scans = [pl.LazyFrame(schema=schema) for schema in schemas]
    return pl.concat(scans, how="diagonal_relaxed").collect_schema()


def _row_count(path):
    return pq.ParquetFile(path).metadata.num_rows


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


# ----- CSV and NDJSON files ----------------------------------------------------------------
TEXT_FORMATS = {".csv": "CSV", ".tsv": "CSV", ".ndjson": "NDJSON", ".jsonl": "NDJSON"}
COMPRESSIONS = (".gz", ".bz2", ".zst", ".lz4")  # pyarrow decompresses these while it reads
TEXT_INFER = 4 << 20  # bytes at the start of a text file whose values give the column types
TEXT_BLOCK = 1 << 18  # bytes parsed at a time (memory follows this and the batch, not the file)
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # the folder name hive writes for a null


def file_format(path):
    """A file's format by its name: CSV (.csv, .tsv), NDJSON (.ndjson, .jsonl), each also
    compressed (.gz, .bz2, .zst, .lz4); Parquet for any other name."""
    name = _uncompressed_name(path)
    return TEXT_FORMATS.get(os.path.splitext(name)[1], "Parquet")


def _uncompressed_name(path):
    name = os.path.basename(os.fspath(path)).lower()
    for suffix in COMPRESSIONS:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def text_schema(path):
    """The Arrow schema of a CSV or NDJSON file (remembered per file version): its columns
    in the types pyarrow infers from its first ``TEXT_INFER`` bytes (whole rows). A column
    empty throughout them is Float64 when they hold the whole file (a column without
    values), else String (text: any later value reads)."""
    return _per_version("schema", path, _infer_text_schema)


def _infer_text_schema(path):
    head, whole = _head(path)
    source = pa.BufferReader(head)
    try:
        if file_format(path) == "NDJSON":
            read = pa_json.ReadOptions(block_size=len(head) + 1)  # one block: every row counts
            schema = pa_json.read_json(source, read_options=read).schema
        else:  # a row cut short at the end of the head is left out
            read = pa_csv.ReadOptions(block_size=len(head) + 1)
            parse = _csv_parse(path, invalid_row_handler=lambda row: "skip")
            schema = pa_csv.read_csv(source, read_options=read, parse_options=parse).schema
    except pa.ArrowInvalid as exc:
        raise _text_error(path, exc, 0, None) from None
    names = schema.names
    repeated = [n for n in dict.fromkeys(names) if names.count(n) > 1]
    if repeated:
        raise DataError(f"'{path}' has more than one column named '{repeated[0]}': rename them")
    if len(names) == 1 and file_format(path) == "CSV":
        _refuse_other_delimiters(path, names[0])
    for i, field in enumerate(schema):
        if pa.types.is_null(field.type):
            schema = schema.set(i, field.with_type(pa.float64() if whole else pa.string()))
    return schema


def _refuse_other_delimiters(path, header):
    """A CSV of one column whose name holds another delimiter (';', '|', a tab; in a .tsv a
    comma) is separated by that: said so, rather than read as one column."""
    own = _csv_parse(path).delimiter
    other = next((ch for ch in ";|\t," if ch != own and ch in header), None)
    if other is not None:
        by = "tabs" if own == "\t" else "commas"
        raise DataError(
            f"'{path}' seems separated by {other!r}, not by {by}: fastseg reads .csv files "
            "separated by commas and .tsv by tabs; convert it, e.g. "
            f"pl.scan_csv(path, separator={other!r}).sink_parquet(...)"
        )


def _head(path):
    """(The first ``TEXT_INFER`` bytes of a text file up to the end of a line, whether they
    are the whole file); refused, naming the file, if it is empty or binary."""
    with pa.input_stream(path, compression="detect") as stream:
        head = stream.read(TEXT_INFER + 1)
    if not head.strip():
        raise DataError(f"'{path}' is empty: it holds no column names and no rows")
    if head.startswith(b"PAR1"):
        raise DataError(f"'{path}' is a Parquet file: name it .parquet to read it")
    if b"\0" in head:
        raise DataError(
            f"'{path}' is not {file_format(path)} text in UTF-8: it holds zero bytes (binary "
            "data, or UTF-16 text: save it as UTF-8)"
        )
    whole = len(head) <= TEXT_INFER
    end = head.rfind(b"\n")
    return (head if whole or end < 0 else head[: end + 1]), whole


def _csv_parse(path, **options):
    """How a CSV is parsed: a header row, then rows separated by commas (.tsv: tabs);
    quoted fields may hold newlines."""
    delimiter = "\t" if _uncompressed_name(path).endswith(".tsv") else ","
    return pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True, **options)


def _open_text(path, schema, columns):
    """pyarrow's streaming reader of ``columns`` of a text file in their types in
    ``schema``, parsing ``TEXT_BLOCK`` bytes at a time (it reads a few blocks ahead).

    CSV's null values are pyarrow's (as pandas': empty, NA, N/A, NaN, null, ...), but in a
    text column only an empty field is null (``_empty_as_null``; "NA" may be North America).
    """
    if file_format(path) == "NDJSON":
        fields = pa.schema([schema.field(c) for c in columns])
        parse = pa_json.ParseOptions(explicit_schema=fields, unexpected_field_behavior="ignore")
        read = pa_json.ReadOptions(block_size=TEXT_BLOCK)
        return pa_json.open_json(path, read_options=read, parse_options=parse)
    types = {c: schema.field(c).type for c in columns}
    return pa_csv.open_csv(
        path,
        read_options=pa_csv.ReadOptions(block_size=TEXT_BLOCK),
        parse_options=_csv_parse(path),
        convert_options=pa_csv.ConvertOptions(column_types=types, include_columns=columns),
    )


def _text_batches(path, columns, batch_size):
    """Arrow tables of ``columns`` of a text file in its schema's types, ``batch_size`` rows
    each (the last fewer). With no columns asked for, one is read all the same: the batches
    still give the number of rows."""
    schema = text_schema(path)
    parsed = [0]
    try:
        reader = _open_text(path, schema, columns or schema.names[:1])
        yield from _rebatched(reader, batch_size, parsed)
    except pa.ArrowInvalid as exc:
        raise _text_error(path, exc, parsed[0], schema) from None


def _rebatched(batches, size, parsed):
    """Tables of ``size`` rows (the last fewer) from record batches of any sizes (slices:
    nothing copied); ``parsed[0]`` counts the rows taken in."""
    held, rows = [], 0
    for batch in batches:
        parsed[0] += batch.num_rows
        held.append(batch)
        rows += batch.num_rows
        while rows >= size:
            table = pa.Table.from_batches(held)
            yield table.slice(0, size)
            rest = table.slice(size)
            held, rows = rest.to_batches(), rest.num_rows
    if rows:
        yield pa.Table.from_batches(held)


def _empty_as_null(frame):
    """The empty fields of a CSV's text columns as nulls (a null written to CSV is empty).
    (In polars: pyarrow's scalars import pandas, 0.3 s.)"""
    return frame.with_columns(pl.col(pl.String).replace("", None))


def _text_rows(path):
    """Rows of a text file, counted by parsing it (one column, as text; NDJSON: no column)
    once per file version. A line count would not do: a quoted CSV field may hold
    newlines, an NDJSON line two objects."""
    return _per_version("rows", path, _count_text_rows)


def _count_text_rows(path):
    schema = text_schema(path)
    first = [] if file_format(path) == "NDJSON" else schema.names[:1]
    as_text = pa.schema([pa.field(name, pa.string()) for name in first])
    parsed = [0]
    try:
        for batch in _open_text(path, as_text, first):
            parsed[0] += batch.num_rows
    except pa.ArrowInvalid as exc:
        raise _text_error(path, exc, parsed[0], schema) from None
    return parsed[0]


_CSV_VALUE = re.compile(
    r"In CSV column #(\d+): CSV conversion error to (\w+): invalid value '(.*)'"
)
_CSV_ROW = re.compile(r"CSV parse error: (?:Row #\d+: )?Expected (\d+) columns, got (\d+): ?(.*)")
_JSON_KIND = re.compile(r"JSON parse error: Column\(/(.*)\) changed from (\w+) to (\w+)")
_JSON_VALUE = re.compile(r"Failed to convert JSON to (\w+), couldn't parse:(.*)")


def _text_error(path, exc, rows, schema):
    """One line for a failure to parse a text file: the file, the column where known, and
    where in the file (with threads, pyarrow knows only the block: after ``rows`` rows)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    where = f"in a row after the first {rows:,}" if rows else "in its first rows"
    head = f"{TEXT_INFER >> 20} MiB" if TEXT_INFER >= 1 << 20 else f"{TEXT_INFER >> 10} KiB"
    inferred = (
        f"the type that its first {head} gave it; fix the value, or convert the file to "
        "Parquet with the column's type"
    )
    if text.startswith(("Empty CSV", "Empty JSON")):
        return DataError(f"'{path}' is empty: it holds no column names and no rows")
    if schema is not None and (match := _CSV_VALUE.match(text)):
        column, kind, value = schema.names[int(match[1])], match[2], _short(match[3])
        return DataError(
            f"column '{column}' of '{path}' holds '{value}' {where}, which is not {kind}, "
            f"{inferred}"
        )
    if match := _CSV_ROW.match(text):
        expected, got, row = match[1], match[2], _short(match[3])
        return DataError(
            f"'{path}' has a row of {got} field(s) {where}, where its header names {expected} "
            f"columns: '{row}' (a quote left open, or a stray delimiter?)"
        )
    if match := _JSON_KIND.match(text):
        column, was, now = match[1], match[2], match[3]
        return DataError(
            f"column '{column}' of '{path}' holds a {now} {where}, where earlier rows hold a "
            f"{was}: fix the value, or convert the file to Parquet"
        )
    if match := _JSON_VALUE.match(text):
        kind, value = match[1], _short(match[2])
        columns = [f"'{f.name}'" for f in schema or () if str(f.type) == kind]
        return DataError(
            f"a column of '{path}' ({' or '.join(columns[:5])}) holds {value} {where}, which "
            f"is not {kind}, {inferred}"
        )
    hint = " (NDJSON holds one JSON object a line)" if file_format(path) == "NDJSON" else ""
    return DataError(f"cannot read '{path}': {_short(text, 200)}{hint}")


def _short(text, limit=60):
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


def _hive_kinds(root, files):
    """{key: polars type} of the key=value folders between ``root`` and ``files``: Int64
    when every value is a whole number, Float64 when a number, else String."""
    values = {}
    for path in files:
        for part in Path(os.path.relpath(os.path.dirname(path), root)).parts:
            key, sep, value = part.partition("=")
            if sep:
                values.setdefault(key, []).append(None if value == HIVE_NULL else unquote(value))
    kinds = {}
    for key, found in values.items():
        text = pl.Series(found, dtype=pl.String)
        numbers = (k for k in (pl.Int64, pl.Float64) if _all_read_as(text, k))
        kinds[key] = next(numbers, pl.String)
    return kinds


def _all_read_as(text, kind):
    return text.cast(kind, strict=False).null_count() == text.null_count()


_KNOWN = {}  # (what, real path, modified, size): a text file's schema or row count


def _per_version(what, path, compute):
    """``compute(path)``, remembered per file version: every pass opens the input again."""
    stat = os.stat(path)
    key = (what, os.path.realpath(path), stat.st_mtime_ns, stat.st_size)
    if key not in _KNOWN:
        if len(_KNOWN) > 65536:
            _KNOWN.clear()
        _KNOWN[key] = compute(path)
    return _KNOWN[key]


def _named_as(path):
    """A note for a file read as Parquet for want of a known extension."""
    if os.path.isfile(path) and not path.endswith(".parquet"):
        return " Files are read as CSV or NDJSON by their extension: .csv, .tsv, .ndjson, .jsonl"
    return ""


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
