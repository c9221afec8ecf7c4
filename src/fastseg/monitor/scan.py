"""One streaming pass of a period's data through a model: every row once, through the model's
one assign path (``iter_assign``), memory following the batch.

It counts exactly what a drift measure needs of every row (rows per reference bin and per
category, missing values, the range, rows per segment, their distances and how many lie out
of distribution, the sums of a Lloyd step from the model's centres) and keeps a uniform
sample of ``config.reference_rows`` rows at positions fixed by the row count and the seed
(the quantiles, and the profile of a reference period). Customer ids go to a ``Migration``.
"""

import warnings

import numpy as np
import polars as pl

from .. import config
from ..errors import DataError
from ..io.sources import as_float32
from ..io.store import positions_within, sample_positions
from ..io.tables import TableReader, is_table_input
from ..preprocess.categories import UnseenCategoryWarning
from . import measures
from .reference import MISSING, UNSEEN, PeriodSample, category_counts


class PeriodScan:
    """What one pass over a period's data found (see the module docstring)."""

    def __init__(self, model, numeric, levels, positions, reference=None):
        k, p = model.n_clusters, model.cluster_centers_.shape[1]
        self.numeric, self.levels, self.reference = numeric, levels, reference
        self.positions = positions
        self.rows = 0
        self.missing = dict.fromkeys(numeric, 0)
        self.low = dict.fromkeys(numeric, np.inf)
        self.high = dict.fromkeys(numeric, -np.inf)
        self.outside = dict.fromkeys(numeric, 0)  # beyond the reference's range
        self.bins = {}
        if reference is not None:
            self.bins = {
                n: np.zeros(reference.feature(n).edges.size + 1, np.int64) for n in numeric
            }
        self.level_counts = {c: np.zeros(len(v) + 2, dtype=np.int64) for c, v in levels.items()}
        self.segment_rows = np.zeros(k, dtype=np.int64)
        self.sq_distance = np.zeros(k)
        self.out_of_distribution = np.zeros(k, dtype=np.int64)
        self.sums = np.zeros((k, p))  # of the rows of each segment, in the centres' space
        self.sampled = {"numeric": [], "codes": [], "segment": [], "distance": []}

    def add(self, values, codes, batch):
        """One batch: ``values`` (rows x numeric features, NaN missing), ``codes`` {column:
        level codes}, and the model's ``AssignedBatch`` of the same rows."""
        first, self.rows = self.rows, self.rows + values.shape[0]
        for j, name in enumerate(self.numeric):
            self._add_numeric(name, values[:, j])
        for column, code in codes.items():
            self.level_counts[column] += category_counts(code, len(self.levels[column]))
        self._add_segments(batch)
        at = positions_within(self.positions, first, self.rows)
        self.sampled["numeric"].append(values[at])
        picked = [codes[c][at] for c in self.levels]
        self.sampled["codes"].append(
            np.stack(picked, axis=1) if picked else np.empty((at.size, 0), np.int64)
        )
        segment = np.where(batch.missing, -1, batch.segment)
        self.sampled["segment"].append(segment[at])
        self.sampled["distance"].append(np.sqrt(batch.distance[at]))

    def _add_numeric(self, name, column):
        present = column[~np.isnan(column)]
        self.missing[name] += column.size - present.size
        if not present.size:
            return
        self.low[name] = min(self.low[name], float(present.min()))
        self.high[name] = max(self.high[name], float(present.max()))
        if self.reference is not None:
            ref = self.reference.feature(name)
            self.bins[name] += measures.bin_counts(ref.edges, present)
            self.outside[name] += int(np.count_nonzero((present < ref.low) | (present > ref.high)))

    def _add_segments(self, batch):
        segment, squared = batch.assigned()
        k = self.segment_rows.shape[0]
        self.segment_rows += np.bincount(segment, minlength=k)
        self.sq_distance += np.bincount(segment, weights=squared, minlength=k)
        for j in range(self.sums.shape[1]):
            self.sums[:, j] += np.bincount(segment, weights=batch.scaled[:, j], minlength=k)
        if self.reference is not None:
            beyond = squared > self.reference.ood_distance[segment] ** 2
            self.out_of_distribution += np.bincount(segment[beyond], minlength=k)

    def sample(self):
        """The period as a reference profile sees it (``reference.PeriodSample``)."""
        numeric = _stacked(self.sampled["numeric"], (0, len(self.numeric)), np.float32)
        codes = _stacked(self.sampled["codes"], (0, len(self.levels)), np.int64)
        return PeriodSample(
            rows=self.rows,
            numeric={n: numeric[:, j] for j, n in enumerate(self.numeric)},
            codes={c: codes[:, j] for j, c in enumerate(self.levels)},
            levels=self.levels,
            segment=_stacked(self.sampled["segment"], (0,), np.int32),
            distance=_stacked(self.sampled["distance"], (0,), np.float64),
            missing=dict(self.missing),
            low={n: _finite(v) for n, v in self.low.items()},
            high={n: _finite(v) for n, v in self.high.items()},
            level_counts=dict(self.level_counts),
            segment_rows=self.segment_rows.copy(),
        )


def scan(model, data, *, reference=None, ids=None, migration=None, side=None, seed=0, say=None):
    """Stream ``data`` (a table input, or an array for a model fitted on one) through
    ``model``; returns its ``PeriodScan``. ``reference``: the ``ReferenceProfile`` whose bins
    to count in; ``ids``/``migration``/``side``: the id column and where its rows go."""
    numeric, levels = model_columns(model)
    if not is_table_input(data):
        return _scan_array(model, data, numeric, reference, seed)
    reader = data if isinstance(data, TableReader) else TableReader(data, model._derivations())
    n = reader.count_rows()
    if n == 0:
        raise DataError(f"{reader.describe} has no rows")
    if ids is not None and ids not in reader.schema:
        raise DataError(f"no id column '{ids}' in {reader.describe}")
    positions = sample_positions(n, config.reference_rows, seed)
    found = PeriodScan(model, numeric, levels, positions, reference)
    keep = list(dict.fromkeys([*numeric, *levels, *([ids] if ids else [])]))
    with warnings.catch_warnings():  # unseen levels: counted and reported by drift itself
        warnings.simplefilter("ignore", UnseenCategoryWarning)
        _scan_batches(model, reader, keep, numeric, levels, found, ids, migration, side)
    return found


def _scan_batches(model, reader, keep, numeric, levels, found, ids, migration, side):
    for batch in model.iter_assign(reader, keep=keep, nulls="skip"):
        frame = batch.kept
        values = as_float32(frame, numeric, reader.describe).to_numpy(order="c")
        codes = {c: level_codes(frame[c], v) for c, v in levels.items()}
        found.add(values, codes, batch)
        if migration is not None:
            migration.add(side, frame[ids], batch.segment, ~batch.missing)


def _scan_array(model, X, numeric, reference, seed):
    """``scan`` of an array (a model fitted on an array: features by position)."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0:
        raise DataError("the new data has no rows" if X.ndim == 2 else "X must be 2-dimensional")
    positions = sample_positions(X.shape[0], config.reference_rows, seed)
    found = PeriodScan(model, numeric, {}, positions, reference)
    step = config.batch_size
    for start in range(0, X.shape[0], step):
        rows = X[start : start + step]
        for batch in model.iter_assign(rows, batch_size=rows.shape[0]):
            found.add(np.asarray(rows, dtype=np.float32), {}, batch)
    return found


def model_columns(model):
    """(numeric features, {categorical column: levels}) a model's profile describes."""
    pre = model.preprocessor_
    if pre.feature_names is None:
        return [f"x{j}" for j in range(pre.n_features)], {}
    levels = dict(pre.levels or {}) if pre.one_hot() else {}
    return pre.plain_features(), levels


def level_codes(column, levels):
    """Each value's index among ``levels``; MISSING for a null, UNSEEN for a new level."""
    if isinstance(column.dtype, (pl.Categorical, pl.Enum)):
        column = column.cast(pl.String)
    codes = column.replace_strict(
        levels, list(range(len(levels))), default=UNSEEN, return_dtype=pl.Int64
    ).to_numpy()
    if column.null_count():  # (replace_strict gives a null the default)
        codes[column.is_null().to_numpy()] = MISSING
    return codes


def _stacked(parts, empty_shape, dtype):
    return np.concatenate(parts) if parts else np.empty(empty_shape, dtype=dtype)


def _finite(value):
    return float(value) if np.isfinite(value) else 0.0
