"""k-prototypes (Huang 1998): segments of numbers and categories together, without one-hot.

Each prototype is a numeric mean and a mode per categorical column; a row's cost to it is the
squared Euclidean distance of its numbers plus ``gamma`` times the categorical columns that
differ from the modes (the kmodes package's definition). One-hot k-means would give a category
a fixed share of a standard deviation; here ``gamma`` says what one mismatch is worth, and it
defaults as kmodes does: half the mean standard deviation of the numeric columns.

The fit reads the table once in bounded batches (``io.tables.TableReader``) into float32
numbers and int32 codes of the sorted levels (about 4 bytes a value: 20M rows of 8 numbers and
2 categories take 800 MB), then runs batch Lloyd passes: a Numba kernel assigns each row by the
mixed cost and adds per-block numeric sums and per-prototype level counts, folded in block
order, so the answer does not depend on threads or batch size. New prototypes are the weighted
means and modes (ties: the lowest code, i.e. the first level in sorted order). Seeding is
greedy k-means++ on the mixed cost over a uniform sample of at most ``init_size`` rows.

kmodes moves rows one at a time in Python (17.8 s for 20k rows and 6 clusters; its issue 57
reports 2 hours for 100k rows); batch passes in Numba reach a fixed point of the same cost
(every row at its least-cost prototype, prototypes the means and modes of their rows).
"""

import json
import math
from numbers import Integral, Real

import numpy as np
import polars as pl

from .. import config
from .._version import __version__
from ..errors import DataError, FastsegError, ModelFileError
from ..io.output import atomic_output
from ..io.sources import weight_values
from ..io.tables import TableReader, is_table_input
from ..preprocess.categories import UnseenLevels, check_level_kinds, learn_levels
from . import kproto_kernels as kernels
from .engine import random_stream
from .fileformat import FORMAT, FORMAT_VERSION
from .kernels import n_blocks
from .threads import thread_limit

SCALES = ("none", "standard")


class KPrototypes:
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
    init_size : int or None
        Rows of the uniform sample k-means++ runs on (default ``config.init_size``).
    n_threads : int or None
        Numba threads (default: all); never changes the result.
    """

    estimator_name = "KPrototypes"
    _run_settings = ("batch_size", "n_threads")  # left out of model files

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
        init_size=None,
        n_threads=None,
    ):
        self.n_clusters = n_clusters
        self.gamma = gamma
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state
        self.batch_size = batch_size
        self.scale = scale
        self.init_size = init_size
        self.n_threads = n_threads

    # ----- parameters ---------------------------------------------------------------------
    def get_params(self, deep=True):
        """The constructor's parameters (as scikit-learn's ``get_params``)."""
        names = ("n_clusters", "gamma", "n_init", "max_iter", "random_state", "batch_size")
        names += ("scale", "init_size", "n_threads")
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
        counts.update(batch_size=None, init_size=None, n_threads=None)
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
            data, names, levels = self._decode(X, categorical, columns, sample_weight)
            if data.n_rows < self.n_clusters:
                raise DataError(
                    f"n_samples={data.n_rows} should be >= n_clusters={self.n_clusters}"
                )
            gamma, scaling = self._prepare(data)
            sample = self.init_size or config.init_size
            starts = [  # every start first: the passes draw no random numbers
                _seed(data, self.n_clusters, gamma, random_state, sample)
                for _ in range(self.n_init)
            ]
            best = None
            for centers, modes in starts:
                result = lloyd(data, centers, modes, gamma, self.max_iter)
                if best is None or result[3] < best[3]:
                    best = result
        self._set_fitted(best[:2], best[3:], names, levels, gamma, scaling)
        self.labels_ = best[2]
        self.cluster_sizes_ = np.bincount(best[2], minlength=self.n_clusters).astype(np.int64)
        return self

    def _prepare(self, data):
        """Scale the numbers (in place) if asked; returns (gamma, (mean, std) or None). The
        default gamma is kmodes': half the mean population std of the numbers clustered."""
        mean, std = _moments(data.num)
        scaling = None
        if self.scale == "standard":
            scaling = (mean, np.where(std > 0, std, 1.0))
            _standardise(data.num, *scaling)
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
        """Read X once: (MixedData, (numeric, categorical) column names, levels)."""
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
        nums, codes = [], []
        with reader.errors():
            for frame in reader.frames([*numeric, *categorical], self._rows()):
                nums.append(_numeric(frame, numeric, reader.describe))
                codes.append(_codes(frame, lookup, reader.describe))
        num = np.concatenate(nums) if nums else np.empty((0, len(numeric)), np.float32)
        code = np.concatenate(codes) if codes else np.empty((0, len(categorical)), np.int32)
        if isinstance(sample_weight, str):
            sample_weight = weight_values(reader, sample_weight, self._rows())
        weights = _weights(sample_weight, num.shape[0])
        data = MixedData(num, code, weights, [len(levels[c]) for c in categorical])
        return data, (numeric, categorical), levels

    # ----- prediction ---------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "cluster_centers_"):
            raise FastsegError("this KPrototypes is not fitted yet: call fit first")

    def predict(self, X):
        """Segment of each row of X (the columns the fit read), streamed in batches. A level
        the fit never saw matches no mode (counted in an ``UnseenCategoryWarning``)."""
        labels = [labels for labels, _ in self._assigned(X)]
        return np.concatenate([np.empty(0, np.int32), *labels])

    def score(self, X, y=None):
        """Opposite of the mixed cost of X on the fitted prototypes (higher is better)."""
        return -float(sum(costs.sum() for _, costs in self._assigned(X)))

    def _assigned(self, X):
        """(labels, costs) per batch of X."""
        self._check_fitted()
        reader = _reader(X)
        numeric, categorical = self.numeric_columns_, self.categorical_columns_
        reader.check_features(numeric)
        check_level_kinds(reader.schema, self.categories_, reader.describe)
        unseen = UnseenLevels(self.categories_)
        with reader.errors(), thread_limit(self.n_threads):
            for frame in reader.frames([*numeric, *categorical], self._rows()):
                num = _numeric(frame, numeric, reader.describe)
                codes = _codes(frame, self.categories_, reader.describe)
                unseen.count(frame)
                if self.scale_mean_ is not None:
                    _standardise(num, self.scale_mean_, self.scale_std_)
                labels = np.empty(num.shape[0], np.int32)
                costs = np.empty(num.shape[0])
                kernels.assign(
                    num, codes, self.cluster_centers_, self.modes_, self.gamma_, labels, costs
                )
                yield labels, costs
        unseen.warn()

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
    def save(self, path, *, overwrite=True):
        """Write the fitted model as JSON, atomically (``KPrototypes.load`` reads it)."""
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"
        with atomic_output(path, overwrite=overwrite) as tmp:
            with open(tmp, "w") as f:
                f.write(text)
        return self

    def to_dict(self):
        """Everything predict needs, plus how the model was made and how well it fits."""
        self._check_fitted()
        params = {k: v for k, v in self.get_params().items() if k not in self._run_settings}
        if not isinstance(params["random_state"], (Integral, type(None))):
            params["random_state"] = None
        scaling = None
        if self.scale_mean_ is not None:
            scaling = {"mean": self.scale_mean_.tolist(), "std": self.scale_std_.tolist()}
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "fastseg_version": __version__,
            "estimator": self.estimator_name,
            "params": params,
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
        """Read a model file written by ``save``; errors say what is wrong with it."""
        from .modelfile import read_model_doc

        doc = read_model_doc(path)
        if doc.get("estimator") != cls.estimator_name:
            raise ModelFileError(f"'{path}' holds a {doc.get('estimator')}, not a KPrototypes")
        try:
            model = cls(**doc["params"])
            model._validate_params()
            model._restore(doc)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            detail = f"missing {exc}" if isinstance(exc, KeyError) else " ".join(str(exc).split())
            raise ModelFileError(f"'{path}' is a damaged fastseg model file: {detail}") from None
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
    """The decoded rows of a fit: float32 numbers (n, p), int32 codes (n, c), float64
    weights, and where each categorical column's levels sit in the per-prototype counts."""

    def __init__(self, num, codes, weights, n_levels):
        self.num, self.codes, self.weights = num, codes, weights
        self.offsets = np.concatenate([[0], np.cumsum(n_levels)]).astype(np.int64)
        self.n_rows = num.shape[0]


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
        p, n_levels = data.num.shape[1], int(data.offsets[-1])
        per_block = 8 * k * (p + n_levels + 1)
        blocks = max(1, min(n_blocks(data.n_rows), config.accumulator_bytes // per_block))
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
        for start in range(0, data.n_rows, self.chunk_rows):
            part = slice(start, min(data.n_rows, start + self.chunk_rows))
            kernels.assign_accumulate(
                data.num[part],
                data.codes[part],
                data.weights[part],
                centers,
                modes,
                gamma,
                self.offsets,
                labels[part],
                self.block_sums,
                self.block_counts,
                self.block_weights,
                self.block_stats,
            )
            for b in range(n_blocks(part.stop - part.start)):
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
    as scikit-learn's k-means does, so that no segment is lost."""
    labels = np.empty(data.n_rows, np.int32)
    costs = np.empty(data.n_rows)
    kernels.assign(data.num, data.codes, centers, modes, gamma, labels, costs)
    far = np.argsort(-costs, kind="stable")[: empty.size]
    centers[empty] = data.num[far]
    modes[empty] = data.codes[far]


def _seed(data, k, gamma, random_state, sample_rows):
    """k-means++ prototypes on a uniform sample of at most ``sample_rows`` rows."""
    n = data.n_rows
    if n > sample_rows:
        rows = np.sort(random_state.choice(n, sample_rows, replace=False))
        num, codes, weights = data.num[rows], data.codes[rows], data.weights[rows]
    else:
        num, codes, weights = data.num, data.codes, data.weights
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
            "values: k-prototypes needs every value (drop or fill those rows first)"
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


def _codes(frame, levels, describe):
    """Each categorical column as int32 codes of its levels (-1: a level not learned)."""
    codes = np.empty((frame.height, len(levels)), np.int32)
    for j, (name, values) in enumerate(levels.items()):
        column = frame[name]
        if column.null_count():
            raise DataError(
                f"categorical column '{name}' of {describe} has missing values: k-prototypes "
                "needs a level in every row (fill them with a level of their own first)"
            )
        if isinstance(column.dtype, (pl.Categorical, pl.Enum)):
            column = column.cast(pl.String)
        codes[:, j] = column.replace_strict(
            values, list(range(len(values))), default=-1, return_dtype=pl.Int32
        ).to_numpy()
    return codes


def _weights(sample_weight, n):
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,):
        raise DataError(f"sample_weight has shape {w.shape}, expected ({n},): one per row")
    if not np.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
        raise DataError("sample_weight must be finite, >= 0, and not all zero")
    return np.ascontiguousarray(w)


def _moments(num):
    """Mean and population standard deviation of each column in float64, in chunks (no
    n x p float64 copy), two passes as numpy's ``std``."""
    n, p = num.shape
    step = config.batch_size
    total = np.zeros(p)
    for s in range(0, n, step):
        total += num[s : s + step].sum(axis=0, dtype=np.float64)
    mean = total / max(n, 1)
    squares = np.zeros(p)
    for s in range(0, n, step):
        squares += ((num[s : s + step] - mean) ** 2).sum(axis=0)
    return mean, np.sqrt(squares / max(n, 1))


def _standardise(num, mean, std):
    """Scale numeric rows in place (float32 storage, float64 arithmetic per chunk)."""
    step = config.batch_size
    for s in range(0, num.shape[0], step):
        num[s : s + step] = (num[s : s + step] - mean) / std


def _positive_int(value):
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 1
