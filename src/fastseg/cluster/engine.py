"""The machinery both estimators share (input, threads, predict/transform/score), without
scikit-learn.

Importing scikit-learn takes about a second and 100 MB (it pulls in SciPy and pandas), a fifth
of a 10M-row ``fastseg fit``: the CLI fits with these engines directly, and the scikit-learn
estimators (``fastseg.estimators``) add its parameter validation, array checks and API on top.
"""

import inspect
import time
import warnings
from contextlib import contextmanager
from numbers import Integral

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from .. import config
from ..errors import DataError, DataWarning, FastsegError
from ..io.dataset import load_dataset, standardize
from ..io.sources import ArraySource, open_table
from ..io.tables import is_table_input, parse_derived, table_input
from ..preprocess.categories import (
    DEFAULT_WEIGHT,
    learn_levels,
    one_hot_columns,
)
from . import initialization, kernels
from .assign import iter_assign


@contextmanager
def thread_limit(n_threads):
    """Run Numba kernels on ``n_threads`` threads and BLAS on one (no oversubscription)."""
    old = numba.get_num_threads()
    n = numba.config.NUMBA_NUM_THREADS if n_threads is None else n_threads
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(old)


def random_stream(seed):
    """The RandomState a seed stands for, as scikit-learn's ``check_random_state`` gives it."""
    if seed is None:
        return np.random.mtrand._rand
    if isinstance(seed, Integral):
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(f"{seed!r} cannot be used to seed a numpy.random.RandomState instance")


class Engine:
    """Shared machinery; subclasses set ``__init__`` (the parameters) and implement ``fit``."""

    estimator_name = None  # the public estimator a model file names, e.g. "KMeans"

    # Parameters that change how a fit runs, never its result (left out of model files).
    _run_settings = ("memory_budget", "n_threads", "verbose", "spill_dir")

    def get_params(self, deep=False):
        """The constructor's parameters, sorted by name as scikit-learn's (which replaces it)."""
        names = inspect.signature(type(self).__init__).parameters
        return {name: getattr(self, name) for name in sorted(names) if name != "self"}

    # ----- checks the scikit-learn estimators replace with scikit-learn's own -------------
    def _validate_params(self):
        """Nothing here: the CLI checks its arguments; the estimators check theirs."""

    def _check_fitted(self):
        if not hasattr(self, "cluster_centers_"):
            raise FastsegError(f"this {self.estimator_name} is not fitted yet: call fit first")

    def _check_array(self, X, reset):
        """X as a C-ordered float array (only the estimators are handed arrays in practice)."""
        from sklearn.utils import check_array

        return check_array(X, dtype=[np.float64, np.float32], order="C")

    # ----- input -------------------------------------------------------------------------
    def _source(self, X, columns=None, *, reset, missing=None):
        """Validate X once at the edge and wrap it as a batch source.

        Rows with nulls follow ``missing`` (default: the model's policy when fitting, an
        error when predicting, so that no row silently goes without a label).
        """
        if not reset:
            self._check_fitted()
        table = is_table_input(X)
        if table:
            if not reset and columns is None:
                names = getattr(self, "feature_names_in_", None)
                columns = None if names is None else list(names)
            if missing is None:  # predicting: nulls are filled as in the fit, or an error
                filling = getattr(self, "impute_values_", None) is not None
                missing = self.missing if reset or filling else "error"
            if reset and self.categorical:
                columns = self._learn_categories(X, columns)
            source = open_table(X, columns, missing=missing, derive=self._derivations())
        elif columns is not None:
            raise DataError("columns= selects columns of a frame or Parquet input, not an array")
        elif self.derive or self.categorical:
            raise DataError(
                "derive= and categorical= work on the columns of a frame or Parquet input, "
                "not an array"
            )
        else:
            source = ArraySource(self._check_array(X, reset))
        if reset:
            self.n_features_in_ = source.n_features
            if table:
                self.feature_names_in_ = np.asarray(source.feature_names, dtype=object)
        elif source.n_features != self.n_features_in_:
            raise DataError(
                f"X has {source.n_features} features, but {type(self).__name__} "
                f"is expecting {self.n_features_in_} features as input"
            )
        return source

    def _learn_categories(self, X, columns):
        """Learn the categorical levels; returns the feature columns plus the one-hot ones."""
        lazy, describe, _ = table_input(X)
        self.categories_ = learn_levels(lazy, list(self.categorical), describe)
        if columns is None:  # every other column, derived ones included, is a feature
            derived = [parse_derived(text)[0] for text in self.derive or ()]
            names = [*lazy.collect_schema().names(), *derived]
            columns = [c for c in names if c not in self.categorical]
        columns = [c for c in columns if c not in self.categorical]
        return columns + [name for name, _ in self._one_hot()]

    def _one_hot(self):
        levels = getattr(self, "categories_", None)
        if not self.categorical or not levels:
            return []
        weight = DEFAULT_WEIGHT if self.category_weight is None else self.category_weight
        return one_hot_columns(levels, weight)

    def _derivations(self):
        """The derived and one-hot columns every read of the input must compute."""
        return [*(self.derive or ()), *self._one_hot()]

    def _unscaled_columns(self):
        """Feature indices of the one-hot columns: they keep their 0/weight values."""
        one_hot = {name for name, _ in self._one_hot()}
        return [j for j, n in enumerate(self.feature_names_in_) if str(n) in one_hot]

    def _sample_size(self):
        """Rows of the uniform sample the init runs on; None when ``init`` gives the centres."""
        if not isinstance(self.init, str):
            return None
        return max(self.n_clusters, self.init_size or self._default_init_size())

    def _default_init_size(self):
        return config.init_size

    def _stream_rows(self):
        """Rows per streamed batch when reading input."""
        return config.batch_size if self.batch_size is None else self.batch_size

    def _load(
        self,
        source,
        sample_weight,
        random_state,
        sample_size,
        *,
        scale=None,
        memory_budget=None,
        min_rows=None,
        log1p=True,
    ):
        """Decode the input once (see ``dataset.load_dataset``); close the result when done."""
        data = load_dataset(
            source,
            sample_weight,
            scale=self.scale if scale is None else scale,
            log1p=self._log1p_columns() if log1p else (),
            unscaled=self._unscaled_columns() if self.categorical else (),
            pca=self.pca if scale is None else None,
            batch_size=self._stream_rows(),
            memory_budget=self.memory_budget if memory_budget is None else memory_budget,
            spill_dir=self.spill_dir,
            sample_size=sample_size,
            random_state=random_state,
        )
        min_rows = self.n_clusters if min_rows is None else min_rows
        if data.n_rows < min_rows:
            data.close()
            raise DataError(f"n_samples={data.n_rows} should be >= n_clusters={self.n_clusters}.")
        return data

    @contextmanager
    def _decoded(self, X, sample_weight, columns):
        """Validate, decode X once, and yield (dataset, random_state) for a fit; then clean up."""
        random_state = self._check_params()
        source = self._source(X, columns, reset=True)
        self.timings_ = {}
        with thread_limit(self.n_threads):
            data = self._load(source, sample_weight, random_state, self._sample_size())
            self.timings_.update(data.timings)
            self._remember_input(data)
            try:
                yield data, random_state
            finally:
                data.close()

    @contextmanager
    def _timed(self, phase):
        """Add the seconds spent in the block to ``timings_[phase]`` (where a fit's time goes)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings_[phase] = self.timings_.get(phase, 0.0) + time.perf_counter() - start

    def _remember_input(self, data):
        """Keep what predict must replay (the scaling) and what the fit dropped."""
        self.scale_mean_ = data.scale_mean
        self.scale_std_ = data.scale_std
        self.impute_values_ = data.impute_values  # None unless missing="mean"/"median"
        self.n_imputed_ = data.n_imputed
        self.pca_ = data.pca  # a dataset.PCA, or None: the centres live in its components
        self.n_rows_dropped_ = data.n_dropped
        self.dropped_rows_ = data.dropped_rows
        if data.constant.size and data.n_rows > 1:
            names = getattr(self, "feature_names_in_", None)
            which = [str(names[j]) if names is not None else f"feature {j}" for j in data.constant]
            warnings.warn(
                f"{', '.join(which)} {'is' if len(which) == 1 else 'are'} the same in every row: "
                "no help in telling segments apart",
                DataWarning,
                stacklevel=4,
            )

    def _init_centers(self, data, random_state):
        """Initial float64 centres from the init sample (or all rows)."""
        init = self.init
        if isinstance(init, str):
            X, w = data.init_rows()
            if init == "k-means++":
                return initialization.kmeans_plusplus(X, w, self.n_clusters, random_state)
            return initialization.random_rows(X, w, self.n_clusters, random_state)
        centers = np.array(init, dtype=np.float64)
        if centers.shape != (self.n_clusters, data.n_features):
            raise DataError(
                f"init has shape {centers.shape}, expected ({self.n_clusters}, {data.n_features}): "
                "one row per cluster, one column per feature"
            )
        if not np.isfinite(centers).all():
            raise DataError("init holds NaN or infinite values")
        return centers

    def _check_params(self):
        """Check the parameters; returns the fit's random stream."""
        self._validate_params()
        return random_stream(self.random_state)

    # ----- prediction --------------------------------------------------------------------
    def iter_assign(self, X, *, columns=None, keep=None, nulls="error", batch_size=None):
        """Stream X through the model: an ``AssignedBatch`` (segment, squared distance, rows
        with a missing feature, the rows in the centres' space, the ``keep`` columns) per
        bounded batch, every row once, in input order. See ``fastseg.cluster.assign``."""
        with thread_limit(self.n_threads):
            yield from iter_assign(
                self, X, columns=columns, keep=keep, nulls=nulls, batch_size=batch_size
            )

    def _scaled(self, rows):
        """Rows in the space the centres live in (log1p, filling and scaling replayed, in the
        fit's order), checked finite."""
        columns = self._log1p_columns()
        if columns:
            rows = rows.copy()
            for j in columns:
                if (rows[:, j] <= -1).any():
                    raise DataError(f"log1p needs values above -1 in feature {j} of X")
                np.log1p(rows[:, j], out=rows[:, j])  # a NaN (missing) stays NaN
        fill = getattr(self, "impute_values_", None)
        if fill is not None and np.isnan(rows).any():
            rows = np.where(np.isnan(rows), fill.astype(rows.dtype), rows)
        if not np.isfinite(rows).all():
            raise DataError("X holds NaN or infinite values; remove or replace them first")
        if self.scale_std_ is not None:
            rows = standardize(rows, self.scale_mean_, self.scale_std_, out=np.empty_like(rows))
        pca = getattr(self, "pca_", None)
        return rows if pca is None else pca.transform(rows)

    def _log1p_columns(self):
        """Feature indices that ``log1p`` names (column names, or indices for arrays)."""
        if not self.log1p:
            return []
        names = [str(n) for n in getattr(self, "feature_names_in_", [])]
        columns = []
        for item in self.log1p:
            if isinstance(item, str):
                if item not in names:
                    raise DataError(f"log1p names '{item}', which is not a feature")
                columns.append(names.index(item))
            elif 0 <= int(item) < self.n_features_in_:
                columns.append(int(item))
            else:
                raise DataError(f"log1p names feature {item}; X has {self.n_features_in_}")
        return sorted(set(columns))

    def _centers64(self):
        return np.ascontiguousarray(self.cluster_centers_, dtype=np.float64)

    def predict(self, X, *, columns=None):
        """Index of the nearest centre for each row of X (array, frame, or Parquet path).

        Rows with a categorical level the fit never saw are labelled without it, and counted
        in an ``UnseenCategoryWarning``.
        """
        labels = [batch.segment for batch in self.iter_assign(X, columns=columns)]
        return np.concatenate([np.empty(0, dtype=np.int32), *labels])

    def fit_predict(self, X, y=None, sample_weight=None, **kwargs):
        return self.fit(X, sample_weight=sample_weight, **kwargs).labels_

    def transform(self, X, *, columns=None):
        """Euclidean distance of each row to every centre, in the cluster-centre space."""
        out = [np.empty((0, self.n_clusters), dtype=self.cluster_centers_.dtype)]
        centers = self._centers64()
        for batch in self.iter_assign(X, columns=columns):
            dist = np.empty((batch.n_rows, self.n_clusters), dtype=np.float64)
            kernels.all_distances(batch.scaled, centers, dist)
            out.append(dist.astype(batch.scaled.dtype, copy=False))
        return np.concatenate(out) if len(out) > 1 else out[0]

    def fit_transform(self, X, y=None, sample_weight=None, **kwargs):
        return self.fit(X, sample_weight=sample_weight, **kwargs).transform(
            X, columns=kwargs.get("columns")
        )

    def score(self, X, y=None, sample_weight=None, *, columns=None):
        """Opposite of the (weighted) inertia of X on the fitted centres: higher is better."""
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        total, start = 0.0, 0
        for batch in self.iter_assign(X, columns=columns):
            dist = batch.distance
            if w is None:
                total += float(dist.sum())
            else:
                total += float(w[start : start + dist.shape[0]] @ dist)
            start += dist.shape[0]
        if w is not None and w.shape[0] != start:
            raise DataError(f"sample_weight has {w.shape[0]} values for {start} rows")
        return -total

    def save(self, path, *, overwrite=True):
        """Write the fitted model as JSON (see ``fastseg.modelfile``), atomically."""
        from .modelfile import save_model

        self._check_fitted()
        save_model(self, path, overwrite=overwrite)
        return self
