"""Label a table of any size: stream it, add a ``segment`` column, write Parquet atomically."""

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .. import config
from ..cluster.engine import thread_limit
from ..errors import DataError
from ..io.output import atomic_output
from ..io.sources import _read_errors, open_parquet
from ..preprocess.categories import unseen, warn_unseen
from ..progress import report

SEGMENT = "segment"
UNSEEN = "__fastseg_unseen"
CHANGED = "the input changed between the fit and the labelling: run again"


def write_labels(model, data, out, *, keep=None, overwrite=False, batch_size=None, fitted=False):
    """Write every input row (or the ``keep`` columns) plus its segment to ``out``.

    Rows with a missing feature value get a null segment and are counted, never dropped, so
    the output lines up with the input. ``fitted=True`` says the model was just fitted on this
    same input: its ``labels_`` (the rows without missing values, in order) and
    ``dropped_rows_`` are written as they are, so only the output columns are read again and
    nothing is searched. Returns (rows written, rows left unlabelled).
    """
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        raise DataError(
            "the model was fitted on an array without column names, so its features cannot be "
            "found in Parquet: fit it on a frame or Parquet file"
        )
    source, columns = check_labels_request(data, list(names), keep, model._derivations())
    lazy = source.lazy_all_columns()
    total = source.count_rows()
    features = (
        [] if fitted else [pl.col(c).cast(pl.Float32).alias(f"__f{i}") for i, c in enumerate(names)]
    )
    levels = getattr(model, "categories_", None) if model.categorical else None
    watch = [] if not levels else [unseen(levels).alias(UNSEEN)]
    query = lazy.select([pl.col(c) for c in columns] + watch + features)
    written = unlabelled = used = n_unseen = 0
    batch_size = batch_size or config.batch_size
    with atomic_output(out, overwrite=overwrite) as tmp, thread_limit(model.n_threads):
        writer = None
        try:
            with _read_errors(source.describe):
                for frame in query.collect_batches(chunk_size=batch_size):
                    if fitted:
                        missing = _dropped_in(model.dropped_rows_, written, frame.height)
                        segment = _spread(model.labels_[used:], missing)
                        used += frame.height - int(missing.sum())
                    else:
                        features = frame.select(frame.columns[-len(names) :])
                        segment, missing = _segments(model, features)
                    if watch:
                        n_unseen += int((frame[UNSEEN] > 0).sum())
                    table = frame.select(columns).to_arrow()
                    table = table.append_column(SEGMENT, _with_nulls(segment, missing))
                    if writer is None:
                        writer = pq.ParquetWriter(
                            tmp,
                            table.schema,
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
        if fitted and used != len(model.labels_):
            raise DataError(CHANGED)
    if n_unseen:
        warn_unseen(n_unseen, levels)
    return written, unlabelled


def check_labels_request(data, names, keep=None, derive=None):
    """Check before any long work that labels can be written; returns (source, output columns).

    The output keeps the input's columns (derived features are not written unless kept).
    """
    source = open_parquet(data, names, missing="drop", derive=derive or ())
    every = list(source.lazy_all_columns().collect_schema().names())
    columns = [c for c in every if c not in source.derived]
    if keep is not None:
        unknown = [c for c in keep if c not in every]
        if unknown:
            raise DataError(f"--keep names columns not in the input: {', '.join(unknown)}")
        columns = list(keep)
    if SEGMENT in columns:
        raise DataError(f"the input already has a '{SEGMENT}' column: leave it out with --keep")
    return source, columns


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
    lo, hi = np.searchsorted(dropped_rows, [start, start + height])
    missing = np.zeros(height, dtype=bool)
    missing[dropped_rows[lo:hi] - start] = True
    return missing


def _spread(labels, missing):
    """Segments for a batch: the next labels in order for rows with every feature, else 0."""
    need = missing.shape[0] - int(missing.sum())
    if labels.shape[0] < need:
        raise DataError(CHANGED)
    segment = np.zeros(missing.shape[0], dtype=np.int32)
    segment[~missing] = labels[:need]
    return segment


def _segments(model, features):
    """Segment per row (int32) and a mask of rows with a missing feature."""
    missing = np.zeros(features.height, dtype=bool)
    if getattr(model, "impute_values_", None) is not None:  # filled as in the fit
        rows = features.fill_null(float("nan")).to_numpy(order="c")
        return model._assign_rows(rows)[0], missing
    for col in features.columns:
        missing |= features[col].is_null().to_numpy()
    segment = np.zeros(features.height, dtype=np.int32)
    if (~missing).any():
        rows = features.filter(~pl.Series(missing)).to_numpy(order="c")
        segment[~missing] = model._assign_rows(rows)[0]
    return segment, missing
