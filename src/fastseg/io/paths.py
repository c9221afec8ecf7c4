"""Which files a table input names: paths, globs and folders expanded into the files to read,
each once, in a stable order, and each file's format by its name (``file_format``).

Apart from reading them, because it is asked apart: every pass resolves its input again, and
``io.output`` asks which files an input names to refuse writing over one. The labels files
fastseg writes carry ``LABELS_MARK``; a folder or glob that holds them skips them here, so that
a run that wrote its labels beside its input does not read them as input next time.
"""

import glob
import os
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DataError, DataWarning

TEXT_FORMATS = {".csv": "CSV", ".tsv": "CSV", ".ndjson": "NDJSON", ".jsonl": "NDJSON"}
COMPRESSIONS = (".gz", ".bz2", ".zst", ".lz4")  # pyarrow decompresses these while it reads
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # the folder name hive writes for a null


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
    return per_file_version("labels mark", path, _marked_as_labels)


_KNOWN = {}  # (what, real path, modified, size): what a file's metadata or a pass told


def per_file_version(what, path, compute):
    """``compute(path)``, remembered per file version (real path, time modified, size): every
    pass resolves and opens the input again, and a footer or a counting pass need not be
    read twice."""
    stat = os.stat(path)
    key = (what, os.path.realpath(path), stat.st_mtime_ns, stat.st_size)
    if key not in _KNOWN:
        if len(_KNOWN) > 65536:
            _KNOWN.clear()
        _KNOWN[key] = compute(path)
    return _KNOWN[key]


def _marked_as_labels(path):
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
