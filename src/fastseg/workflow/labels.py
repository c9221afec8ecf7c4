"""Label a table of any size: stream it, add a ``segment`` column, write Parquet atomically."""

import tempfile
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import _version, config
from ..cluster.assign import table_features
from ..errors import DataError, FastsegError
from ..io.output import Outputs, input_files, said_if_disk_full
from ..io.paths import LABELS_MARK
from ..io.store import anonymous_array, hand_back_freed_memory, positions_within
from ..io.tables import TableReader
from ..progress import report

SEGMENT = "segment"
CHANGED = "the input changed between the fit and the labelling: run again"


def write_labels(
    model, data, out, *, keep=None, overwrite=False, batch_size=None, fitted=False, outputs=None
):
    """Write every input row (or the ``keep`` columns) plus its segment to ``out``.

    Rows with a missing feature value get a null segment and are counted, never dropped, so
    the output lines up with the input. ``fitted=True`` says the model was just fitted on this
    same input: its ``labels_`` (the rows without missing values, in order) and
    ``dropped_rows_`` are written as they are, so only the output columns are read again and
    nothing is searched. Memory follows the batch, whatever the rows and columns. Returns
    (rows written, rows left unlabelled).

    ``outputs``, an ``Outputs`` of a run with other outputs, holds the file back until the
    run publishes them all; without it the file is published when complete.
    """
    if outputs is None:
        with Outputs(overwrite=overwrite, inputs=input_files(data)) as own:
            counts = write_labels(
                model, data, out, keep=keep, batch_size=batch_size, fitted=fitted, outputs=own
            )
            own.publish()
        return counts
    reader, columns = _labels_request(data, model, keep)
    total = reader.count_rows()
    batch_size = batch_size or config.batch_size
    if not fitted:
        batches = (
            (b.kept, b.segment, b.missing)
            for b in model.iter_assign(reader, keep=columns, batch_size=batch_size)
        )
        return _write(batches, out, outputs, total)
    if getattr(model, "labels_", None) is None:  # (no local name: the labels are freed below)
        raise FastsegError(
            "the model holds no labels of its fit (MiniBatchKMeans with compute_labels=False, "
            "or a loaded model): write labels with fitted=False"
        )
    with _labels_set_aside(model) as stored:
        return _write(
            _fitted_batches(model, reader, columns, batch_size, stored), out, outputs, total
        )


def _write(batches, out, outputs, total):
    """Write (kept columns, segment, missing) batches as one Parquet file into ``outputs``."""
    written = unlabelled = 0
    with outputs.file(out) as tmp:
        writer = None
        try:
            for frame, segment, missing in batches:
                table = frame.to_arrow().append_column(SEGMENT, _with_nulls(segment, missing))
                if writer is None:
                    writer = pq.ParquetWriter(
                        tmp,
                        table.schema.with_metadata({LABELS_MARK: _version.__version__}),
                        compression="zstd",
                        use_dictionary=_dictionary_columns(table.schema),
                    )
                writer.write_table(table)
                written += frame.height
                unlabelled += int(missing.sum())
                report("labels", written, total)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise DataError("the input has no rows to label")
    return written, unlabelled


def _fitted_batches(model, reader, columns, batch_size, stored):
    """(kept columns, segment, missing) per batch from the fit's own labels (read in order
    from ``stored``), in input order."""
    written = 0
    with reader.errors():
        for frame in reader.frames(columns, batch_size):
            missing = _dropped_in(model.dropped_rows_, written, frame.height)
            segment = np.zeros(frame.height, dtype=np.int32)
            segment[~missing] = stored.read(frame.height - int(missing.sum()))
            written += frame.height
            yield frame, segment, missing
    if stored.left:
        raise DataError(CHANGED)


@contextmanager
def _labels_set_aside(model):
    """The fit's labels in an unlinked temporary file while the labels pass reads them in
    order, their memory freed meanwhile (4 bytes a row: 160 MB at 40M rows, which made the
    peak of ``fit --labels`` grow with the rows), and read back into ``labels_`` after."""
    n = model.labels_.shape[0]
    chunk = config.label_chunk_rows
    folder = model.spill_dir or tempfile.gettempdir()
    with tempfile.TemporaryFile(prefix="fastseg-labels-", dir=model.spill_dir) as f:
        with said_if_disk_full(f"the fit's labels to '{folder}'", "free space or set --spill-dir"):
            for s in range(0, n, chunk):
                f.write(np.ascontiguousarray(model.labels_[s : s + chunk], dtype=np.int32).data)
        model.labels_ = None  # after a fit, the only reference: its pages go back now
        hand_back_freed_memory()  # and the fit's freed work arrays, before the pass's own
        try:
            f.seek(0)
            yield _InOrder(f, n)
        finally:
            hand_back_freed_memory()  # the pass's buffers, before the labels come back
            model.labels_ = anonymous_array(n, np.int32)
            f.seek(0)
            for s in range(0, n, chunk):
                _read_exactly(f, model.labels_[s : s + chunk])


class _InOrder:
    """Labels read from a file in order, as many as asked each time."""

    def __init__(self, file, n):
        self.file, self.left = file, n

    def read(self, count):
        if count > self.left:
            raise DataError(CHANGED)
        labels = np.empty(count, dtype=np.int32)
        _read_exactly(self.file, labels)
        self.left -= count
        return labels


def _read_exactly(file, array):
    if array.nbytes and file.readinto(memoryview(array).cast("B")) != array.nbytes:
        raise DataError("the temporary labels file was cut short: is the disk full?")


def _labels_request(data, model, keep=None):
    """``check_labels_request`` for a fitted model (k-prototypes: its numeric columns; its
    categorical ones are levels, checked as it reads them)."""
    numeric = getattr(model, "numeric_columns_", None)
    features = table_features(model) if numeric is None else numeric
    return check_labels_request(data, features, keep, model._derivations())


def check_labels_request(data, features, keep=None, derive=None):
    """Check before any long work that labels can be written; returns (reader, output columns).

    The output keeps the input's columns (derived features are not written unless kept).
    """
    reader = data if isinstance(data, TableReader) else TableReader(data, derive or ())
    reader.check_features(features)
    every = list(reader.schema.names())
    columns = [c for c in every if c not in reader.derived]
    if keep is not None:
        if not keep:
            raise DataError("keep names no columns: leave it out to keep every input column")
        unknown = [c for c in keep if c not in every]
        if unknown:
            raise DataError(f"--keep names columns not in the input: {', '.join(unknown)}")
        repeated = sorted({c for c in keep if list(keep).count(c) > 1})
        if repeated:
            raise DataError(f"--keep names {', '.join(repeated)} more than once")
        columns = list(keep)
    if SEGMENT in columns:
        raise DataError(f"the input already has a '{SEGMENT}' column: leave it out with --keep")
    return reader, columns


def _dictionary_columns(schema):
    """Columns worth dictionary encoding: the segment and text ones, not ids and amounts.

    Trying a dictionary on a column of 10M distinct ids and giving up took most of the write.
    """
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal, pa.types.is_temporal)
    return [f.name for f in schema if f.name == SEGMENT or not any(t(f.type) for t in numeric)]


def _with_nulls(segment, missing):
    """The int32 segment column as Arrow, null where ``missing``.

    Built from its buffers: ``pa.array`` of a NumPy array imports pandas when it is installed
    (0.3 s, once per run).
    """
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    return pa.Array.from_buffers(
        pa.int32(), segment.shape[0], [validity, pa.py_buffer(segment)], int(missing.sum())
    )


def _dropped_in(dropped_rows, start, height):
    """Mask of the rows ``start .. start + height`` of the input that the fit dropped."""
    missing = np.zeros(height, dtype=bool)
    missing[positions_within(dropped_rows, start, start + height)] = True
    return missing
