"""k-prototypes (Huang 1998): segments of numbers and categories together, without one-hot.

Each prototype is a numeric mean and a mode per categorical column; a row's cost to it is the
squared Euclidean distance of its numbers plus ``gamma`` times the categorical columns that
differ from the modes (the kmodes package's definition). One-hot k-means would give a category
a fixed share of a standard deviation; here ``gamma`` says what one mismatch is worth, and it
defaults as kmodes does: half the mean standard deviation of the numeric columns.

The fit reads the table once in bounded batches (``io.tables.TableReader``) into float32
numbers and int32 codes of the sorted levels (4 bytes a value: 20M rows of 8 numbers and 2
categories take 800 MB), kept in RAM within the memory budget and otherwise in spill files read
back a chunk at a time (``io.store.RowStore``, as k-means), so memory follows the batch. It
then runs batch Lloyd passes: a Numba kernel assigns each row by the
mixed cost and adds per-block numeric sums and per-prototype level counts, folded in block
order, so the answer does not depend on threads or batch size. New prototypes are the weighted
means and modes (ties: the lowest code, i.e. the first level in sorted order). Seeding is
greedy k-means++ on the mixed cost over a uniform sample of at most ``init_size`` rows.

kmodes moves rows one at a time in Python (17.8 s for 20k rows and 6 clusters; its issue 57
reports 2 hours for 100k rows); batch passes in Numba reach a fixed point of the same cost
(every row at its least-cost prototype, prototypes the means and modes of their rows).
"""

import math
from numbers import Integral, Real

import numpy as np
import polars as pl

from .. import config
from ..errors import DataError, FastsegError, ModelFileError
from ..io.sources import weight_values
from ..io.store import RowStore, aligned_chunk_rows, positions_within, sample_positions
from ..io.tables import TableReader, is_table_input
from ..preprocess.categories import UnseenLevels, check_level_kinds, learn_levels
from . import kproto_kernels as kernels
from .engine import random_stream
from .fileformat import SavedModel
from .kernels import n_blocks
from .step import farthest
from .threads import thread_limit

SCALES = ("none", "standard")
MISSING = ("error", "drop")


class KPrototypes(SavedModel):
    """k-prototypes clustering of mixed numeric and categorical columns (Huang 1998).

    Parameters
    ----------
    n_clusters : int
        Number of segments.
    gamma : float or None
        Cost of one categorical mismatch, in squared numeric units; None: 0.5 x the mean
        standard deviation of the numeric columns (as kmodes; resolved in ``gamma_``).
    n_init : int
        k-means++ starts; the fit of least cost is kept.
    max_iter : int
        Most prototype updates per start.
    random_state : int, RandomState or None
        Seed of the k-means++ starts.
    batch_size : int or None
        Rows per batch read (default ``config.batch_size``); never changes the result.
    scale : {"none", "standard"}
        "standard" centres and divides each numeric column by its standard deviation before
        clustering (``cost_`` and ``gamma`` are then in those units).
    missing : {"error", "drop"}
        A row with a missing value: stop with an error, or leave it out of the fit (counted
        in ``n_rows_dropped_``, positions in ``dropped_rows_``) and give it no segment.
    init_size : int or None
        Rows of the uniform sample k-means++ runs on (default ``config.init_size``).
    n_threads : int or None
        Numba threads (default: all); never changes the result.
    memory_budget : int or None
        Bytes the decoded rows may take in RAM (default: as k-means'); beyond it they go to
        a spill file. Never changes the result.
    spill_dir : str or None
        Folder of the spill files (default: the system's temporary folder).
    """

    estimator_name = "KPrototypes"
    _run_settings = ("batch_size", "n_threads", "memory_budget", "spill_dir")  # not in files

    def __init__(
        self,
        n_clusters=8,
        *,
        gamma=None,
        n_init=1,
        max_iter=100,
        random_state=None,
        batch_size=None,
        scale="none",
        missing="error",
        init_size=None,
        n_threads=None,
        memory_budget=None,
        spill_dir=None,
    ):
        self.n_clusters = n_clusters
        self.gamma = gamma
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state
        self.batch_size = batch_size
        self.scale = scale
        self.missing = missing
        self.init_size = init_size
        self.n_threads = n_threads
        self.memory_budget = memory_budget
        self.spill_dir = spill_dir

    # ----- parameters ---------------------------------------------------------------------
    def get_params(self, deep=True):
        """The constructor's parameters (as scikit-learn's ``get_params``)."""
        names = ("n_clusters", "gamma", "n_init", "max_iter", "random_state", "batch_size")
        names += ("scale", "missing", "init_size", "n_threads", "memory_budget", "spill_dir")
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params):
        for name, value in params.items():
            if name not in self.get_params():
                raise ValueError(f"invalid parameter {name!r} for KPrototypes")
            setattr(self, name, value)
        return self

    def __repr__(self):
        given = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if k != "n_clusters")
        return f"KPrototypes({self.n_clusters!r}, {given})"

    def _validate_params(self):
        """Check the parameters once, at the edge: the passes trust them."""
        counts = {"n_clusters": 1, "n_init": 1, "max_iter": 1}
        counts.update(batch_size=None, init_size=None, n_threads=None, memory_budget=None)
        for name, default in counts.items():
            value = getattr(self, name)
            if (value is not None or default is not None) and not _positive_int(value):
                raise ValueError(f"{name} must be a positive whole number, not {value!r}")
        gamma = self.gamma
        if gamma is not None and not (
            isinstance(gamma, Real) and not isinstance(gamma, bool) and 0 <= gamma < math.inf
        ):
            raise ValueError(f"gamma must be a finite number >= 0 or None, not {gamma!r}")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, not {self.scale!r}")
        if self.missing not in MISSING:
            raise ValueError(f"missing must be one of {', '.join(MISSING)}, not {self.missing!r}")

    def _rows(self):
        return config.batch_size if self.batch_size is None else self.batch_size

    # ----- fit ----------------------------------------------------------------------------
    def fit(self, X, y=None, categorical=None, *, columns=None, sample_weight=None):
        """Cluster the rows of X: a polars/pandas frame, an Arrow table, or Parquet/CSV/NDJSON
        path(s). ``categorical``: the names of the categorical columns (text, boolean or
        integer; at least one). ``columns``: the numeric columns (default: every other
        column). ``sample_weight``: a weight per row, or the name of a column holding them.
        """
        self._validate_params()
        random_state = random_stream(self.random_state)
        with thread_limit(self.n_threads):
            data, names, levels, dropped = self._decode(X, categorical, columns, sample_weight)
            try:
                best, gamma, scaling = self._run(data, random_state)
            finally:
                data.close()
        self._set_fitted(best[:2], best[3:], names, levels, gamma, scaling)
        self.labels_ = best[2]
        self.cluster_sizes_ = np.bincount(best[2], minlength=self.n_clusters).astype(np.int64)
        self.dropped_rows_ = dropped
        self.n_rows_dropped_ = int(dropped.size)
        return self

    def _run(self, data, random_state):
        """Every start on the decoded rows; returns (the best result of ``lloyd``, gamma,
        scaling)."""
        if data.n_rows == 0:
            raise DataError("no rows left to cluster: every row has a missing value")
        if data.n_rows < self.n_clusters:
            raise DataError(f"n_samples={data.n_rows} should be >= n_clusters={self.n_clusters}")
        gamma, scaling = self._prepare(data)
        sample = self.init_size or config.init_size
        starts = [  # every start first: the passes draw no random numbers
            _seed(data, self.n_clusters, gamma, random_state, sample) for _ in range(self.n_init)
        ]
        best = None
        for centers, modes in starts:
            result = lloyd(data, centers, modes, gamma, self.max_iter)
            if best is None or result[3] < best[3]:
                best = result
        return best, gamma, scaling

    def _prepare(self, data):
        """Scale the numbers (in place) if asked; returns (gamma, (mean, std) or None). The
        default gamma is kmodes': half the mean population std of the numbers clustered."""
        mean, std = _moments(data)
        scaling = None
        if self.scale == "standard":
            scaling = (mean, np.where(std > 0, std, 1.0))
            for _, num, _, _ in data.chunks(writable=True):
                _standardise(num, *scaling)
            std = (std > 0).astype(np.float64)  # what is left of each column's spread
        gamma = float(0.5 * np.mean(std)) if self.gamma is None else float(self.gamma)
        return gamma, scaling

    def _set_fitted(self, prototypes, metrics, names, levels, gamma, scaling):
        """The fitted attributes every model has (a fit's, or a model file's)."""
        (centers, modes), (cost, n_iter) = prototypes, metrics
        self.numeric_columns_, self.categorical_columns_ = names
        self.categories_ = levels
        self.feature_names_in_ = np.asarray([*names[0], *names[1]], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.scale_mean_, self.scale_std_ = (None, None) if scaling is None else scaling
        self.gamma_ = gamma
        self.cluster_centers_, self.modes_ = centers, modes
        self.cost_ = float(cost)
        self.n_iter_ = int(n_iter)

    def fit_predict(self, X, y=None, categorical=None, **kwargs):
        return self.fit(X, categorical=categorical, **kwargs).labels_

    def _decode(self, X, categorical, columns, sample_weight):
        """Read X once: (MixedData, (numeric, categorical) column names, levels, positions
        of the rows dropped for a missing value)."""
        categorical = _categorical_names(categorical)
        reader = _reader(X)
        levels = learn_levels(reader, categorical)
        given = reader.schema.names() if columns is None else _names(columns)
        numeric = [c for c in given if c not in categorical]
        if not numeric:
            raise DataError(
                "k-prototypes needs at least one numeric column besides the categorical ones "
                "(only categories: use k-modes)"
            )
        numeric = reader.check_features(numeric)
        lookup = {c: levels[c] for c in categorical}
        n_max = reader.count_rows()
        budget = (
            config.default_memory_budget() if self.memory_budget is None else self.memory_budget
        )
        fits = n_max * 4 * (len(numeric) + len(categorical)) <= budget
        stores = [
            RowStore(n_max, width, dtype, in_memory=fits, spill_dir=self.spill_dir)
            for width, dtype in ((len(numeric), np.float32), (len(categorical), np.int32))
        ]
        dropped, read = [np.empty(0, np.int64)], 0
        try:
            with reader.errors():
                for frame in reader.frames([*numeric, *categorical], self._rows()):
                    height = frame.height
                    if self.missing == "drop":
                        nulls = _null_rows(frame, [*numeric, *categorical])
                        dropped.append(np.flatnonzero(nulls) + read)
                        frame = frame.filter(pl.Series(~nulls)) if nulls.any() else frame
                    read += height
                    stores[0].append(_numeric(frame, numeric, reader.describe))
                    stores[1].append(_codes(frame, lookup, reader.describe))
            dropped = np.concatenate(dropped)
            if isinstance(sample_weight, str):
                sample_weight = weight_values(reader, sample_weight, self._rows())
            weights = _weights(sample_weight, read)
            if weights is not None and dropped.size:
                weights = np.delete(weights, dropped)
        except BaseException:
            for store in stores:
                store.close()
            raise
        chunk_rows = aligned_chunk_rows(self._rows())
        data = MixedData(*stores, weights, [len(levels[c]) for c in categorical], chunk_rows)
        return data, (numeric, categorical), levels, dropped

    # ----- prediction ---------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "cluster_centers_"):
            raise FastsegError("this KPrototypes is not fitted yet: call fit first")

    def predict(self, X):
        """Segment of each row of X (the columns the fit read), streamed in batches: -1 for a
        row with a missing value after a fit that dropped such rows. A level the fit never saw
        matches no mode (counted in an ``UnseenCategoryWarning``)."""
        labels = [batch.labels() for batch in self.iter_assign(X)]
        return np.concatenate([np.empty(0, np.int32), *labels])

    def score(self, X, y=None):
        """Opposite of the mixed cost of X on the fitted prototypes (higher is better)."""
        return -float(sum(batch.distance.sum() for batch in self.iter_assign(X)))

    def iter_assign(self, X, *, columns=None, keep=None, nulls="model", batch_size=None):
        """An ``AssignedBatch`` per bounded batch of X, every row once, in input order, as
        k-means' ``iter_assign`` (labels files, profiles): ``distance`` is the mixed cost,
        ``scaled`` the numbers as the prototypes see them, ``kept`` the ``keep`` columns. A
        row with a missing value gets no segment (``missing``) with ``nulls="skip"`` or
        ``"model"`` after a fit that dropped such rows; otherwise it stops with a clear
        error. ``columns`` must be None (tables are read by name only)."""
        from .assign import NULLS, AssignedBatch

        self._check_fitted()
        if columns is not None:
            raise DataError("k-prototypes reads its columns by name: leave columns out")
        if nulls not in NULLS:
            raise ValueError(f"nulls={nulls!r}: use one of {', '.join(NULLS)}")
        reader = _reader(X)
        features = [*self.numeric_columns_, *self.categorical_columns_]
        reader.check_features(self.numeric_columns_)
        check_level_kinds(reader.schema, self.categories_, reader.describe)
        unseen = UnseenLevels(self.categories_)
        read = list(dict.fromkeys([*features, *(keep or [])]))
        rows = batch_size or self._rows()
        with reader.errors(), thread_limit(self.n_threads):
            for frame in reader.frames(read, rows):
                missing = np.zeros(frame.height, bool)
                if nulls == "skip" or (nulls == "model" and self.missing == "drop"):
                    missing = _null_rows(frame, features)
                present = frame.filter(pl.Series(~missing)) if missing.any() else frame
                num = _numeric(present, self.numeric_columns_, reader.describe)
                codes = _codes(present, self.categories_, reader.describe)
                unseen.count(present)
                if self.scale_mean_ is not None:
                    _standardise(num, self.scale_mean_, self.scale_std_)
                labels, costs = np.empty(num.shape[0], np.int32), np.empty(num.shape[0])
                kernels.assign(
                    num, codes, self.cluster_centers_, self.modes_, self.gamma_, labels, costs
                )
                segment, distance = np.zeros(frame.height, np.int32), np.full(frame.height, np.nan)
                segment[~missing], distance[~missing] = labels, costs
                kept = None if keep is None else frame.select(keep)
                yield AssignedBatch(segment, distance, missing, num, kept)
        unseen.warn()

    # ----- what the fastseg commands read (as k-means models give it) ---------------------
    @property
    def categorical(self):
        """The categorical columns of the fit."""
        return list(self.categorical_columns_)

    def _plain_features(self):
        """The numeric columns (profiled by their statistics; the categories by shares)."""
        return list(self.numeric_columns_)

    def _derivations(self):
        return ()  # (no derived or one-hot columns: the columns are read as they are)

    def _fit_sizes(self):
        return self.cluster_sizes_

    def _renumber_components(self, order):
        """Renumber the modes with the centres (``workflow.segments.renumber``)."""
        self.modes_ = self.modes_[order]

    # ----- what the segments are ----------------------------------------------------------
    def _numeric_centers(self):
        """The numeric part of the prototypes in the input's units."""
        if self.scale_mean_ is None:
            return self.cluster_centers_
        return self.cluster_centers_ * self.scale_std_ + self.scale_mean_

    @property
    def cluster_centroids_(self):
        """Prototypes as kmodes gives them: numeric values (input units), then the mode level
        of each categorical column, one object row per segment."""
        self._check_fitted()
        modes = [
            [self.categories_[c][m] for c, m in zip(self.categorical_columns_, row, strict=True)]
            for row in self.modes_.tolist()
        ]
        out = np.empty((self.n_clusters, len(self.feature_names_in_)), dtype=object)
        out[:, : len(self.numeric_columns_)] = self._numeric_centers()
        out[:, len(self.numeric_columns_) :] = np.asarray(modes, dtype=object)
        return out

    def centers_in_original_units(self):
        """One row per segment: its size, numeric means (input units) and modes (levels)."""
        self._check_fitted()
        centers = self._numeric_centers()
        table = {"segment": np.arange(self.n_clusters), "size": self.cluster_sizes_}
        for j, name in enumerate(self.numeric_columns_):
            table[name] = centers[:, j]
        for j, name in enumerate(self.categorical_columns_):
            table[name] = [self.categories_[name][m] for m in self.modes_[:, j]]
        return pl.DataFrame(table)

    # ----- the model file -----------------------------------------------------------------
    def to_dict(self):
        """Everything predict needs, plus how the model was made and how well it fits."""
        self._check_fitted()
        scaling = None
        if self.scale_mean_ is not None:
            scaling = {"mean": self.scale_mean_.tolist(), "std": self.scale_std_.tolist()}
        return {
            **self._envelope(),
            "numeric_columns": list(self.numeric_columns_),
            "categorical_columns": list(self.categorical_columns_),
            "categories": {c: list(v) for c, v in self.categories_.items()},
            "scaling": scaling,
            "gamma": self.gamma_,
            "cluster_centers": self.cluster_centers_.tolist(),
            "modes": self.modes_.tolist(),
            "metrics": {
                "cost": self.cost_,
                "n_iter": self.n_iter_,
                "n_rows": int(self.cluster_sizes_.sum()),
                "cluster_sizes": self.cluster_sizes_.tolist(),
            },
        }

    @classmethod
    def load(cls, path):
        """Read a model file written by ``save`` (as ``fastseg.load`` does); errors say what
        is wrong with it."""
        from .modelfile import load

        model = load(path)
        if not isinstance(model, cls):
            raise ModelFileError(f"'{path}' holds a {model.estimator_name}, not a KPrototypes")
        return model

    def _restore(self, doc):
        """Set the fitted attributes from a model document, checking each (predict trusts
        them); a ValueError or KeyError says what is wrong."""
        k = self.n_clusters
        numeric, categorical = list(doc["numeric_columns"]), list(doc["categorical_columns"])
        levels = {c: list(doc["categories"][c]) for c in categorical}
        centers = np.asarray(doc["cluster_centers"], dtype=np.float64)
        modes = np.asarray(doc["modes"], dtype=np.int64)
        if centers.shape != (k, len(numeric)) or not np.isfinite(centers).all():
            raise ValueError(f"cluster_centers must be {k} x {len(numeric)} finite values")
        sizes = np.asarray([len(levels[c]) for c in categorical])
        if modes.shape != (k, len(categorical)) or ((modes < 0) | (modes >= sizes)).any():
            raise ValueError(f"modes must be {k} x {len(categorical)} level indices")
        gamma = float(doc["gamma"])
        if not 0 <= gamma < math.inf:
            raise ValueError("gamma must be a finite number >= 0")
        scaling = None
        if doc["scaling"] is not None:
            mean, std = (np.asarray(doc["scaling"][f], dtype=np.float64) for f in ("mean", "std"))
            if mean.shape != std.shape or mean.shape != (len(numeric),) or not (std > 0).all():
                raise ValueError("scaling must hold a mean and a positive std per numeric column")
            scaling = (mean, std)
        metrics = doc["metrics"]
        sizes = np.asarray(metrics["cluster_sizes"], dtype=np.int64)
        if sizes.shape != (k,) or (sizes < 0).any():
            raise ValueError(f"cluster_sizes must be {k} counts")
        prototypes = (centers, modes.astype(np.int32))
        self._set_fitted(
            prototypes,
            (metrics["cost"], metrics["n_iter"]),
            (numeric, categorical),
            levels,
            gamma,
            scaling,
        )
        self.cluster_sizes_ = sizes


class MixedData:
    """The decoded rows of a fit: float32 numbers (n, p) and int32 codes (n, c) in two
    ``RowStore``s (RAM, or spill files), float64 weights (None: every row weighs 1), and
    where each categorical column's levels sit in the per-prototype counts."""

    def __init__(self, num, codes, weights, n_levels, chunk_rows):
        self.num, self.codes, self.weights = num, codes, weights
        self.offsets = np.concatenate([[0], np.cumsum(n_levels)]).astype(np.int64)
        self.n_rows = num.n_rows
        self.chunk_rows = chunk_rows

    @classmethod
    def of_arrays(cls, num, codes, weights, n_levels):
        """Rows already in memory (float32 numbers, int32 codes), used in place."""
        stores = [
            RowStore(a.shape[0], a.shape[1], a.dtype, in_memory=True, array=a) for a in (num, codes)
        ]
        return cls(*stores, weights, n_levels, aligned_chunk_rows(config.batch_size))

    def chunks(self, chunk_rows=None, writable=False):
        """(first row, numbers, codes, weights) chunk by chunk, in row order; with
        ``writable``, changes to the numbers are kept."""
        chunk_rows = chunk_rows or self.chunk_rows
        ones = np.ones(min(chunk_rows, self.n_rows)) if self.weights is None else None
        pairs = zip(
            self.num.chunks(chunk_rows, writable), self.codes.chunks(chunk_rows), strict=True
        )
        for (start, num), (_, codes) in pairs:
            m = num.shape[0]
            yield start, num, codes, ones[:m] if ones is not None else self.weights[start:][:m]

    def take(self, positions):
        """Copies of the numbers, codes and weights of the rows at sorted ``positions``."""
        num = np.empty((positions.size, self.num.n_features), np.float32)
        codes = np.empty((positions.size, self.codes.n_features), np.int32)
        taken = 0
        for start, rows, row_codes, _ in self.chunks():
            if taken == positions.size:  # (the rest of a spilled store is not read)
                break
            picked = positions_within(positions, start, start + rows.shape[0])
            num[taken : taken + picked.size] = rows[picked]
            codes[taken : taken + picked.size] = row_codes[picked]
            taken += picked.size
        weights = np.ones(positions.size) if self.weights is None else self.weights[positions]
        return num, codes, weights

    def close(self):
        self.num.close()
        self.codes.close()


def lloyd(data, centers, modes, gamma, max_iter):
    """Batch k-prototypes passes from (centers, modes); returns (centers, modes, labels, cost,
    n_iter). Stops when no label changes: the prototypes are then the means and modes of
    their rows and every row is at its least-cost prototype (a fixed point, as kmodes' own).
    After ``max_iter`` updates one more pass makes the labels agree with the prototypes.
    ``n_iter``: prototype updates made."""
    labels = np.full(data.n_rows, -1, np.int32)
    totals = Totals(centers.shape[0], data)
    for n_iter in range(max_iter + 1):
        totals.run(data, centers, modes, gamma, labels)
        if totals.changed == 0 or n_iter == max_iter:
            return centers, modes, labels, totals.cost, n_iter
        centers, modes = totals.prototypes(centers, modes)
        empty = np.flatnonzero(totals.weights == 0)
        if empty.size:
            _relocate(data, centers, modes, gamma, empty)


class Totals:
    """The sums of one pass: per-prototype weighted numeric sums, level counts and weights,
    the weighted cost and the labels changed. The kernel runs on chunks of whole blocks with
    bounded partial buffers (``config.accumulator_bytes``); the partials are folded in block
    order, so the sums do not depend on threads or chunking."""

    def __init__(self, k, data):
        p, n_levels = data.num.n_features, int(data.offsets[-1])
        per_block = 8 * k * (p + n_levels + 1)
        # chunks of at most a batch: a spilled store reads each into a buffer of that size
        blocks = max(1, min(n_blocks(data.chunk_rows), config.accumulator_bytes // per_block))
        self.chunk_rows = blocks * config.BLOCK_ROWS
        self.block_sums = np.empty((blocks, k, p))
        self.block_counts = np.empty((blocks, k, n_levels))
        self.block_weights = np.empty((blocks, k))
        self.block_stats = np.empty((blocks, 2))
        self.sums, self.counts = np.empty((k, p)), np.empty((k, n_levels))
        self.weights, self.stats = np.empty(k), np.empty(2)
        self.offsets = data.offsets

    @property
    def cost(self):
        return float(self.stats[0])

    @property
    def changed(self):
        return int(self.stats[1])

    def run(self, data, centers, modes, gamma, labels):
        """One E-step over every row (labels INOUT), summing what the M-step needs."""
        for total in (self.sums, self.counts, self.weights, self.stats):
            total[:] = 0.0
        for start, num, codes, weights in data.chunks(self.chunk_rows):
            m = num.shape[0]
            kernels.assign_accumulate(
                num,
                codes,
                weights,
                centers,
                modes,
                gamma,
                self.offsets,
                labels[start : start + m],
                self.block_sums,
                self.block_counts,
                self.block_weights,
                self.block_stats,
            )
            for b in range(n_blocks(m)):
                self.sums += self.block_sums[b]
                self.counts += self.block_counts[b]
                self.weights += self.block_weights[b]
                self.stats += self.block_stats[b]

    def prototypes(self, centers, modes):
        """Weighted means and modes (ties: the lowest code); an empty prototype keeps its
        old values until relocated."""
        new_centers = centers.copy()
        full = self.weights > 0
        new_centers[full] = self.sums[full] / self.weights[full, None]
        new_modes = np.empty_like(modes)
        for j in range(modes.shape[1]):
            counts = self.counts[:, self.offsets[j] : self.offsets[j + 1]]
            new_modes[:, j] = np.argmax(counts, axis=1)  # the first maximum: lowest code
        new_modes[~full] = modes[~full]
        return new_centers, new_modes


def _relocate(data, centers, modes, gamma, empty):
    """Move each empty prototype (INOUT) onto one of the rows costing most under the others,
    as scikit-learn's k-means does, so that no segment is lost (the costliest first; ties:
    the first row). One pass, keeping the costliest rows seen so far."""
    e = empty.size
    costs, rows = np.empty(0), np.empty(0, np.int64)
    num = np.empty((0, data.num.n_features), np.float32)
    codes = np.empty((0, data.codes.n_features), np.int32)
    for start, chunk_num, chunk_codes, _ in data.chunks():
        m = chunk_num.shape[0]
        chunk_costs = np.empty(m)
        kernels.assign(
            chunk_num, chunk_codes, centers, modes, gamma, np.empty(m, np.int32), chunk_costs
        )
        top = farthest(chunk_costs, np.arange(m), e)
        costs, rows = np.concatenate([costs, chunk_costs[top]]), np.concatenate([rows, start + top])
        num, codes = (
            np.concatenate([num, chunk_num[top]]),
            np.concatenate([codes, chunk_codes[top]]),
        )
        kept = farthest(costs, rows, e)
        costs, rows, num, codes = costs[kept], rows[kept], num[kept], codes[kept]
    centers[empty] = num
    modes[empty] = codes


def _seed(data, k, gamma, random_state, sample_rows):
    """k-means++ prototypes on a uniform sample of at most ``sample_rows`` rows (drawn in
    O(sample) memory, whatever the rows)."""
    seed = random_state.randint(np.iinfo(np.int32).max)
    num, codes, weights = data.take(sample_positions(data.n_rows, sample_rows, seed))
    chosen = plusplus(num, codes, weights, k, gamma, random_state)
    return num[chosen].astype(np.float64), np.ascontiguousarray(codes[chosen])


def plusplus(num, codes, weights, k, gamma, random_state):
    """Greedy k-means++ (scikit-learn's: 2 + log k candidates a step, keep the one that
    lowers the total cost most) with the mixed cost; returns the chosen row indices."""
    n = num.shape[0]
    n_trials = 2 + int(np.log(k))
    first = random_state.choice(n, p=weights / weights.sum())
    closest = np.empty(n)
    kernels.closer_costs(num, codes, first, gamma, np.full(n, np.inf), closest)
    potential = float(weights @ closest)
    chosen = [int(first)]
    trials = np.empty((n_trials, n))
    for _ in range(1, k):
        if potential <= 0:
            raise DataError(f"the data has fewer than n_clusters={k} distinct rows")
        draws = random_state.uniform(size=n_trials) * potential
        candidates = np.minimum(np.searchsorted(np.cumsum(weights * closest), draws), n - 1)
        for t, row in enumerate(candidates):
            kernels.closer_costs(num, codes, row, gamma, closest, trials[t])
        potentials = trials @ weights
        best = int(np.argmin(potentials))
        closest[:] = trials[best]
        potential = float(potentials[best])
        chosen.append(int(candidates[best]))
    return np.asarray(chosen)


# ----- reading ----------------------------------------------------------------------------
def _reader(X):
    if isinstance(X, TableReader):
        return X
    if not is_table_input(X):
        raise DataError(
            "KPrototypes reads a polars/pandas frame, an Arrow table or Parquet/CSV/NDJSON "
            f"path(s) with named columns, not {type(X).__name__}"
        )
    return TableReader(X)


def _names(columns):
    return [columns] if isinstance(columns, str) else [str(c) for c in columns]


def _categorical_names(categorical):
    if categorical is None or isinstance(categorical, str) and not categorical:
        names = []
    else:
        names = _names(categorical)
    if not names:
        raise DataError(
            "k-prototypes needs the categorical columns: fit(X, categorical=[names]) "
            "(numbers only: use fastseg.KMeans)"
        )
    if len(set(names)) != len(names):
        raise DataError(f"categorical columns are repeated: {', '.join(names)}")
    return names


def _numeric(frame, numeric, describe):
    """The numeric columns of a batch as float32 (n, p); a null or NaN is an error."""
    nulls = [c for c in numeric if frame[c].null_count()]
    if nulls:
        raise DataError(
            f"numeric column(s) {', '.join(repr(c) for c in nulls)} of {describe} have missing "
            "values: k-prototypes needs every value (missing='drop' leaves those rows out)"
        )
    num = frame.select(pl.col(numeric).cast(pl.Float32)).to_numpy(order="c")
    num = np.require(num, np.float32, ["C", "W"])
    if not np.isfinite(num).all():
        bad = [c for j, c in enumerate(numeric) if not np.isfinite(num[:, j]).all()]
        raise DataError(
            f"numeric column(s) {', '.join(repr(c) for c in bad)} of {describe} hold NaN or "
            "infinite values (or values beyond float32's range)"
        )
    return num


def _null_rows(frame, columns):
    """Mask of the rows of a batch with a missing value in any of ``columns``."""
    nulls = frame.select(pl.any_horizontal(pl.col(columns).is_null())).to_series()
    return nulls.fill_null(False).to_numpy()


def _codes(frame, levels, describe):
    """Each categorical column as int32 codes of its levels (-1: a level not learned)."""
    codes = np.empty((frame.height, len(levels)), np.int32)
    for j, (name, values) in enumerate(levels.items()):
        column = frame[name]
        if column.null_count():
            raise DataError(
                f"categorical column '{name}' of {describe} has missing values: k-prototypes "
                "needs a level in every row (missing='drop' leaves those rows out, or fill them "
                "with a level of their own)"
            )
        if isinstance(column.dtype, (pl.Categorical, pl.Enum)):
            column = column.cast(pl.String)
        codes[:, j] = column.replace_strict(
            values, list(range(len(values))), default=-1, return_dtype=pl.Int32
        ).to_numpy()
    return codes


def _weights(sample_weight, n):
    if sample_weight is None:
        return None  # every row weighs 1 (no array of n ones)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,):
        raise DataError(f"sample_weight has shape {w.shape}, expected ({n},): one per row")
    if not np.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
        raise DataError("sample_weight must be finite, >= 0, and not all zero")
    return np.ascontiguousarray(w)


def _moments(data):
    """Mean and population standard deviation of each numeric column in float64, two passes
    as numpy's ``std``, summed block by block in row order (chunks hold whole blocks), so the
    figures do not depend on the batch size."""
    n = max(data.n_rows, 1)
    total = np.zeros(data.num.n_features)
    for _, num, _, _ in data.chunks():
        for b in range(0, num.shape[0], config.BLOCK_ROWS):
            total += num[b : b + config.BLOCK_ROWS].sum(axis=0, dtype=np.float64)
    mean = total / n
    squares = np.zeros_like(total)
    for _, num, _, _ in data.chunks():
        for b in range(0, num.shape[0], config.BLOCK_ROWS):
            squares += ((num[b : b + config.BLOCK_ROWS] - mean) ** 2).sum(axis=0)
    return mean, np.sqrt(squares / n)


def _standardise(num, mean, std):
    """Scale numeric rows in place (float32 storage, float64 arithmetic)."""
    num[:] = (num - mean) / std


def _positive_int(value):
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 1
