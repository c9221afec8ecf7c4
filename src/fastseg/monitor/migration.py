"""Customer migration between two periods: how many customers, matched by id, moved from each
segment of the reference period to each segment of the new one.

Either period may be far larger than memory, so the ids are hash-partitioned to temporary Arrow
IPC files as the batches arrive, and joined one partition at a time: memory holds one batch while
spilling, then one partition's two files, whatever the number of rows.
"""

import math
import os
import tempfile

import numpy as np
import polars as pl
import pyarrow as pa

from .. import config
from ..errors import DataError, FastsegError
from ..io.output import said_if_disk_full

SIDES = ("reference", "new")
_DATA = {"reference": "the reference data", "new": "the new data"}
# Integer dtypes whose values may not fit Int64 (the others always do).
_WIDE = (pl.UInt64, pl.Int128, pl.UInt128)
_INT64 = np.iinfo(np.int64)
_ARROW = {"integers": pa.int64(), "text": pa.large_string()}


def _kind_of(ids, column):
    """``ids`` as Int64 or String, and their kind: one dtype per kind, so that equal ids hash
    alike (and land in the same partition) whatever width or encoding each side used."""
    dtype = ids.dtype
    if dtype.is_integer():
        if dtype in _WIDE and ids.null_count() < len(ids):
            low, high = ids.min(), ids.max()
            if high > _INT64.max or low < _INT64.min:
                raise DataError(
                    f"the id column '{column}' holds integers beyond the 64-bit signed range "
                    f"({low} to {high}): cast it to text to match customers on it"
                )
        return ids.cast(pl.Int64), "integers"
    if dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum)):
        return ids.cast(pl.String), "text"
    raise DataError(
        f"the id column '{column}' holds {type(dtype).__name__} values: ids must be integers "
        "or text; cast it to one of them, or give another column with --id"
    )


def _sorted_by_partition(ids, batch, n_partitions):
    """``batch`` stably sorted by the partition of each id, and where each partition starts:
    stable, so that rows keep their input order within a partition ("first occurrence")."""
    if n_partitions == 1:
        return batch, np.array([0, batch.num_rows])
    part = (ids.hash() % n_partitions).to_numpy().astype(np.int64)
    order = np.argsort(part, kind="stable")
    starts = np.zeros(n_partitions + 1, dtype=np.int64)
    np.cumsum(np.bincount(part, minlength=n_partitions), out=starts[1:])
    # (from its buffers: pa.array of a NumPy array imports pandas where it is installed)
    order = pa.Array.from_buffers(pa.int64(), order.size, [None, pa.py_buffer(order)])
    return batch.take(order), starts


def _first_rows(path, schema):
    """The rows of one (side, partition) file whose id comes first, and how many repeated one."""
    if path is None:
        return None, 0
    with pa.ipc.open_stream(path) as reader:
        frame = pl.from_arrow(reader.read_all().cast(schema))
    first = frame["id"].is_first_distinct()
    return frame.filter(first), len(frame) - int(first.sum())


class Migration:
    """The migration of customers between a reference period and a new one, by id.

    ``add`` each side's batches as they are assigned (in input order: the first row of an id is
    the one kept); ``result`` joins the two sides one partition at a time. ``close`` (or leaving
    the ``with`` block) removes the temporary files.
    """

    def __init__(self, n_segments, rows, *, spill_dir=None, column="id"):
        self.k = int(n_segments)
        self.column = column
        self.n_partitions = max(1, math.ceil(rows / config.migration_partition_rows))
        if spill_dir is not None and not os.path.isdir(spill_dir):
            raise FastsegError(
                f"the spill folder '{spill_dir}' does not exist: create it or give another "
                "with --spill-dir"
            )
        folder = spill_dir if spill_dir is not None else tempfile.gettempdir()
        self._remedy = f"free space in '{folder}' or give a roomier folder with --spill-dir"
        with said_if_disk_full("the migration's temporary folder", self._remedy):
            self._tmp = tempfile.TemporaryDirectory(prefix="fastseg-migration-", dir=spill_dir)
        self._kind = None  # ("integers" or "text", the side that set it)
        self._files = {side: set() for side in SIDES}
        self._missing = dict.fromkeys(SIDES, 0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Remove the temporary files (again: nothing)."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _folder(self):
        if self._tmp is None:
            raise ValueError("this Migration is closed")
        return self._tmp.name

    def _path(self, side, partition):
        return os.path.join(self._folder(), f"{side}-{partition}.arrows")

    def _check_kind(self, side, kind):
        """Integer ids never equal text ids: refuse the mix rather than report no match."""
        if self._kind is None:
            self._kind = (kind, side)
            return
        known, known_side = self._kind
        if kind == known:
            return
        if known_side == side:
            where = f"{kind} in one batch of {_DATA[side]} and {known} in another"
        else:
            where = f"{known} in {_DATA[known_side]} but {kind} in {_DATA[side]}"
        raise DataError(
            f"the id column '{self.column}' holds {where}: cast one side so that both hold "
            "the same kind (text, for instance)"
        )

    def add(self, side, ids, segments, assigned):
        """Spill one batch of ``side`` (ids, their segments, whether each row got one) to the
        partition files; rows with a null id are only counted."""
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, not {side!r}")
        folder = self._folder()
        segments, assigned = np.asarray(segments), np.asarray(assigned, dtype=bool)
        if not len(ids) == len(segments) == len(assigned):
            raise ValueError("ids, segments and assigned must have one entry per row")
        if ids.dtype == pl.Null:  # a column of nulls only: no kind to learn
            self._missing[side] += len(ids)
            return
        ids, kind = _kind_of(ids, self.column)
        self._check_kind(side, kind)
        present = ids.is_not_null().to_numpy()
        self._missing[side] += len(ids) - int(present.sum())
        ids, segments, assigned = ids.filter(present), segments[present], assigned[present]
        if len(ids) == 0:
            return
        if (
            assigned.any()
            and not 0 <= segments[assigned].min() <= segments[assigned].max() < self.k
        ):
            raise ValueError(f"segments must lie in [0, {self.k})")
        batch = pa.RecordBatch.from_arrays(
            [
                ids.to_arrow().cast(_ARROW[kind]),
                pl.Series(segments.astype(np.int32))
                .scatter(np.flatnonzero(~assigned), None)
                .to_arrow(),
            ],
            names=["id", "segment"],
        )
        batch, starts = _sorted_by_partition(ids, batch, self.n_partitions)
        with said_if_disk_full(f"the migration's temporary files in '{folder}'", self._remedy):
            for partition in np.flatnonzero(np.diff(starts)).tolist():
                start, stop = int(starts[partition]), int(starts[partition + 1])
                self._append(side, partition, batch.slice(start, stop - start))

    def _append(self, side, partition, batch):
        """Append ``batch`` to its (side, partition) file as one IPC stream message (the schema
        first, when the file is new): one file per partition, not one per batch."""
        path = self._path(side, partition)
        with open(path, "ab") as file:
            if partition not in self._files[side]:
                file.write(batch.schema.serialize())
                self._files[side].add(partition)
            file.write(batch.serialize())

    def _join(self, partition, totals):
        """Add one partition's counts to ``totals`` (both sides' files, nothing more, in memory)."""
        kind = self._kind[0]
        schema = pa.schema([("id", _ARROW[kind]), ("segment", pa.int32())])
        frames = {}
        for side in SIDES:
            path = self._path(side, partition) if partition in self._files[side] else None
            frames[side], repeated = _first_rows(path, schema)
            totals["duplicates"][side] += repeated
        ref, new = frames["reference"], frames["new"]
        if ref is None or new is None:
            totals["lost"] += 0 if ref is None else len(ref)
            totals["new"] += 0 if new is None else len(new)
            return
        both = ref.rename({"segment": "old"}).join(new.rename({"segment": "now"}), on="id")
        totals["lost"] += len(ref) - len(both)
        totals["new"] += len(new) - len(both)
        moved = both.drop_nulls()
        totals["unassigned"] += len(both) - len(moved)
        cells = moved["old"].to_numpy().astype(np.int64) * self.k + moved["now"].to_numpy()
        totals["matrix"] += np.bincount(cells, minlength=self.k * self.k).reshape(self.k, self.k)

    def result(self):
        """The migration matrix and the counts beside it, as plain Python ints (JSON-ready)."""
        self._folder()
        totals = {
            "matrix": np.zeros((self.k, self.k), dtype=np.int64),
            "new": 0,
            "lost": 0,
            "unassigned": 0,
            "duplicates": dict.fromkeys(SIDES, 0),
        }
        if self._kind is not None:
            for partition in range(self.n_partitions):
                self._join(partition, totals)
        matrix = totals["matrix"]
        return {
            "matrix": matrix.tolist(),
            "matched": int(matrix.sum()),
            "new": int(totals["new"]),
            "lost": int(totals["lost"]),
            "unassigned": int(totals["unassigned"]),
            "duplicates": {side: int(totals["duplicates"][side]) for side in SIDES},
            "missing_ids": {side: int(self._missing[side]) for side in SIDES},
        }
