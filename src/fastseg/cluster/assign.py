"""The one streaming assign path of a fitted model: every input row once, in input order, in
bounded batches, with its segment and its squared distance to that segment's centre.

predict, transform, score, the labels file, the profile, the metrics and the report all use
``iter_assign``; it reads tables with the same reader as the fit (``io.tables.TableReader``),
so the rows line up with the fit's by construction, and memory follows the batch.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl

from .. import config
from ..errors import DataError
from ..io.sources import as_float32, missing_values_error, refuse_nan_values
from ..io.tables import TableReader, is_table_input
from ..preprocess.categories import UnseenLevels, check_level_kinds

NULLS = ("model", "error", "skip")
NO_SEGMENT = -1  # what predict gives a row that gets none (scikit-learn's "no cluster")


@dataclass
class AssignedBatch:
    """One batch of input rows and what the model makes of them.

    ``segment`` (int32) and ``distance`` (float64, squared, in the centres' space) have one
    entry per input row; rows with a missing feature (``missing``) have segment 0 and a NaN
    distance. ``scaled`` holds the rows that have every feature, as the centres see them;
    ``kept`` the requested input columns of every row (a polars frame, or None).
    """

    segment: np.ndarray
    distance: np.ndarray
    missing: np.ndarray
    scaled: np.ndarray
    kept: pl.DataFrame | None = None

    @property
    def n_rows(self):
        return self.segment.shape[0]

    def labels(self):
        """What predict gives: each row's segment, ``NO_SEGMENT`` for a row without one."""
        return np.where(self.missing, NO_SEGMENT, self.segment).astype(np.int32, copy=False)

    def assigned(self):
        """(segments, distances) of the rows that have every feature."""
        present = ~self.missing
        return self.segment[present], self.distance[present]


def iter_assign(model, X, *, columns=None, keep=None, nulls="model", batch_size=None):
    """Yield an ``AssignedBatch`` per batch of X (array, frame, Arrow table or Parquet).

    ``keep`` names input columns to carry along (tables only). X may be an
    ``io.tables.TableReader`` made with the model's derivations (a caller that already has one
    saves reading the input's schema again). A row with a missing feature is filled as the
    fit filled it (``missing="mean"`` or ``"median"``); otherwise ``nulls="error"`` stops with
    a clear error and ``"skip"`` gives it no segment; ``"model"`` (the default) follows the
    fit's policy: ``missing="drop"`` skips, ``"error"`` stops, in the library and the CLI
    alike. Rows whose categorical level the fit never saw are
    assigned without it and counted in one ``UnseenCategoryWarning`` at the end.
    """
    if nulls not in NULLS:
        raise ValueError(f"nulls={nulls!r}: use one of {', '.join(NULLS)}")
    if nulls == "model":
        nulls = "skip" if getattr(model, "missing", "error") == "drop" else "error"
    model._check_fitted()
    batch_size = batch_size or config.batch_size
    if not is_table_input(X):
        if columns is not None or keep:
            raise DataError("columns= selects columns of a frame or Parquet input, not an array")
        yield from _array_batches(model, X, batch_size)
        return
    yield from _table_batches(model, X, columns, keep or [], nulls, batch_size)


def _array_batches(model, X, batch_size):
    for rows in model._source(X, reset=False).batches(batch_size):  # checked as in the fit
        yield _assigned(model, rows, np.zeros(rows.shape[0], dtype=bool))


def _table_batches(model, X, columns, keep, nulls, batch_size):
    reader = X if isinstance(X, TableReader) else TableReader(X, model._derivations())
    features = table_features(model, columns, reader)
    reader.check_features(features)
    unknown = [c for c in keep if c not in reader.schema]
    if unknown:
        raise DataError(f"no such column(s) in {reader.describe}: {', '.join(unknown)}")
    levels = getattr(model, "categories_", None) if model.categorical else None
    if levels:
        check_level_kinds(reader.schema, levels, reader.describe)
    names = [f"__f{j}" for j in range(len(features))]
    filling = getattr(model, "impute_values_", None) is not None
    unseen = UnseenLevels(levels) if levels else None
    wanted = list(dict.fromkeys([*keep, *features, *(levels or [])]))
    with reader.errors():
        for frame in reader.frames(wanted, batch_size):
            if unseen is not None:
                unseen.count(frame)
            values = as_float32(frame, features, reader.describe, names)
            rows, missing = _rows_and_gaps(values, filling, nulls, features, reader.describe)
            batch = _assigned(model, rows, missing)
            batch.kept = frame.select(keep) if keep else None
            yield batch
    if unseen is not None:
        unseen.warn()


def table_features(model, columns=None, reader=None):
    """The columns of a table that hold the model's features (its fitted names, or
    ``columns``), or a clear error for a model fitted on an array. An in-memory frame
    (``reader``) of exactly as many columns as the array had is taken by position, with
    scikit-learn's warning (a Pipeline with ``set_output(transform="pandas")`` passes one)."""
    names = getattr(model, "feature_names_in_", None)
    if columns is not None:
        columns = [columns] if isinstance(columns, str) else [str(c) for c in columns]
        if len(columns) != model.n_features_in_:
            raise DataError(
                f"columns names {len(columns)} features, but {type(model).__name__} "
                f"is expecting {model.n_features_in_} features as input"
            )
        return columns
    if names is None and reader is not None and reader.in_memory:
        if len(reader.schema) == model.n_features_in_:
            warnings.warn(
                f"X has feature names, but {type(model).__name__} was fitted without feature names",
                UserWarning,
                stacklevel=4,
            )
            return list(reader.schema.names())
    if names is None:
        raise DataError(
            "the model was fitted on an array without column names, so its features cannot be "
            "found in a table: fit it on a frame or Parquet file, or pass columns="
        )
    return [str(n) for n in names]


def _rows_and_gaps(values, filling, nulls, features, describe):
    """The feature rows to assign (float32, row-major) and a mask of rows with a gap."""
    gaps = values.null_count().row(0)
    if filling:  # filled as the fit filled them
        refuse_nan_values(values, describe, features)
        rows = values.fill_null(float("nan")).to_numpy(order="c") if any(gaps) else None
        rows = values.to_numpy(order="c") if rows is None else rows
        return rows, np.zeros(values.height, dtype=bool)
    missing = np.zeros(values.height, dtype=bool)
    if not any(gaps):
        return values.to_numpy(order="c"), missing
    if nulls == "error":
        raise missing_values_error(features[next(i for i, n in enumerate(gaps) if n)], describe)
    for column in values.get_columns():
        missing |= column.is_null().to_numpy()
    return values.filter(~pl.Series(missing)).to_numpy(order="c"), missing


def _assigned(model, rows, missing):
    """Segments and squared distances of ``rows`` (the rows of the batch without gaps)."""
    scaled = model._scaled(rows)
    labels = np.empty(rows.shape[0], dtype=np.int32)
    dist = np.empty(rows.shape[0], dtype=np.float64)
    model._nearest(scaled, labels, dist)
    if not missing.any():
        return AssignedBatch(labels, dist, missing, scaled)
    segment = np.zeros(missing.shape[0], dtype=np.int32)
    distance = np.full(missing.shape[0], np.nan)
    segment[~missing], distance[~missing] = labels, dist
    return AssignedBatch(segment, distance, missing, scaled)
