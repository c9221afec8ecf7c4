"""CSV, TSV and NDJSON files, read by pyarrow's streaming parsers in blocks of ``TEXT_BLOCK``
bytes, so that memory follows the block and the batch, not the file.

Text needs what Parquet does not, hence a module of its own: column types inferred from the
first ``TEXT_INFER`` bytes (Parquet stores them), rows counted by parsing (Parquet's metadata
holds the count), both remembered per file version since every pass opens the input again,
the empty fields of a CSV's text columns read as nulls, and one readable line naming the file,
the column and where in the file for a value or a row that does not parse.
"""

import os
import re
from pathlib import Path
from urllib.parse import unquote

import polars as pl
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json

from ..errors import DataError
from .paths import HIVE_NULL, _uncompressed_name, file_format, per_file_version

TEXT_INFER = 4 << 20  # bytes at the start of a text file whose values give the column types
TEXT_BLOCK = 1 << 18  # bytes parsed at a time (memory follows this and the batch, not the file)


def text_schema(path):
    """The Arrow schema of a CSV or NDJSON file (remembered per file version): its columns
    in the types pyarrow infers from its first ``TEXT_INFER`` bytes (whole rows). A column
    empty throughout them is Float64 when they hold the whole file (a column without
    values), else String (text: any later value reads)."""
    return per_file_version("schema", path, _infer_text_schema)


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
    return per_file_version("rows", path, _count_text_rows)


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


def _named_as(path):
    """A note for a file read as Parquet for want of a known extension."""
    if os.path.isfile(path) and not path.endswith(".parquet"):
        return " Files are read as CSV or NDJSON by their extension: .csv, .tsv, .ndjson, .jsonl"
    return ""
