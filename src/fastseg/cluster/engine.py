"""The machinery both estimators share (input, threads, predict/transform/score), without
scikit-learn.

Importing scikit-learn takes about a second and 100 MB (it pulls in SciPy and pandas), a fifth
of a 10M-row ``fastseg fit``: the CLI fits with these engines directly, and the scikit-learn
estimators (``fastseg.cluster.estimators``) add its parameter validation, array checks and API
on top.
"""

import inspect
import time
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from numbers import Integral

import numpy as np
import polars as pl

from .. import config
from ..errors import DataError, DataWarning, FastsegError
from ..io.decode import load_dataset
from ..io.sources import ArraySource, open_table, weight_values
from ..io.tables import TableReader, from_pandas, is_pandas_frame, is_table_input
from ..preprocess.categories import learn_levels
from ..preprocess.preprocessor import Preprocessor
from ..preprocess.settings import PreprocessSettings
from . import initialization, kernels
from .assign import iter_assign
from .fileformat import SavedModel
from .step import label_counts
from .threads import thread_limit


def random_stream(seed):
    """The RandomState a seed stands for, as scikit-learn's ``check_random_state`` gives it."""
    if seed is None:
        return np.random.mtrand._rand
    if isinstance(seed, Integral):
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(f"{seed!r} cannot be used to seed a numpy.random.RandomState instance")


class Engine(SavedModel):
    """Shared machinery; subclasses set ``__init__`` (the parameters) and implement ``fit``."""

    estimator_name = None  # the public estimator a model file names, e.g. "KMeans"

    # Parameters that change how a fit runs, never its result (left out of model files).
    _run_settings = ("memory_budget", "n_threads", "verbose", "spill_dir")

    def _keep_params(self, values):
        """Store every constructor argument as given (``__init__``'s ``locals()``): an
        engine's ``__init__`` only stores, as scikit-learn's rule is, and ``get_params``
        reads them back by the signature's names."""
        for name, value in values.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

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
        reader = TableReader(X, self.derive)
        self.categories_ = learn_levels(reader, list(self.categorical))
        if columns is None:  # every other column, derived ones included, is a feature
            columns = [c for c in reader.schema.names() if c not in self.categorical]
        columns = [c for c in columns if c not in self.categorical]
        return columns + [name for name, _ in self._preprocessing().one_hot()]

    def _preprocessing(self):
        """The fitted Preprocessor, or (before the decode pass) one from the parameters and
        the levels learned so far, which knows the columns every read must compute."""
        fitted = self.__dict__.get("preprocessor_")
        if fitted is not None:
            return fitted
        names = getattr(self, "feature_names_in_", None)
        return Preprocessor(
            PreprocessSettings.of(self),
            getattr(self, "n_features_in_", 0),
            None if names is None else list(names),
            getattr(self, "categories_", None),
        )

    def _plain_features(self):
        """The fitted feature names other than the one-hot columns (the numbers chosen)."""
        return self._preprocessing().plain_features()

    def _derivations(self):
        """The derived and one-hot columns every read of the input must compute."""
        return self._preprocessing().derivations()

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
        fill_values=None,
        reference_rows=None,
    ):
        """Decode the input once (see ``io.decode.load_dataset``); close the result when done."""
        data = load_dataset(
            source,
            sample_weight,
            scale=self.scale if scale is None else scale,
            log1p=self._preprocessing().resolve_log1p() if log1p else (),
            unscaled=self._preprocessing().one_hot_indices(),
            pca=self.pca if scale is None else None,
            batch_size=self._stream_rows(),
            memory_budget=self.memory_budget if memory_budget is None else memory_budget,
            spill_dir=self.spill_dir,
            sample_size=sample_size,
            random_state=random_state,
            fill_values=fill_values,
            reference_rows=reference_rows,
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
        if isinstance(sample_weight, str):  # a column of the table: its values
            reader = TableReader(X, self._derivations())
            sample_weight = weight_values(reader, sample_weight, self._stream_rows())
        with self._new_fit():
            source = self._source(X, columns, reset=True)
            self.timings_ = {}
            with thread_limit(self.n_threads):
                data = self._load(
                    source,
                    sample_weight,
                    random_state,
                    self._sample_size(),
                    reference_rows=config.reference_rows,
                )
                self.timings_.update(data.timings)
                self._remember_input(data)
                try:
                    yield data, random_state
                    self._keep_reference(data.reference)
                finally:
                    data.close()

    # What a fit learns from its data: set aside while a new fit runs (its columns come from
    # the parameters, not from the past fit), put back if the new fit fails.
    _learned = (
        "preprocessor_",
        "categories_",
        "labels_",
        "inertia_",
        "cluster_sizes_",
        "reference_",
    )

    @contextmanager
    def _new_fit(self):
        before = {name: self.__dict__.pop(name) for name in self._learned if name in self.__dict__}
        try:
            yield
        except BaseException:
            if "preprocessor_" not in self.__dict__:
                self.__dict__.update(before)
            raise

    @contextmanager
    def _timed(self, phase):
        """Add the seconds spent in the block to ``timings_[phase]`` (where a fit's time goes)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings_[phase] = self.timings_.get(phase, 0.0) + time.perf_counter() - start

    def _remember_input(self, data):
        """Keep what predict must replay (the fitted Preprocessor) and what the fit dropped."""
        pre = self._preprocessing()
        pre.resolve_log1p()
        pre.fill_values = data.impute_values  # None unless missing="mean"/"median"
        pre.centre, pre.spread = data.scale_mean, data.scale_std
        pre.pca = data.pca  # or None: else the centres live in its components
        self.preprocessor_ = pre
        self.n_imputed_ = data.n_imputed
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

    def _keep_reference(self, tap):
        """Keep the reference profile of the fitted data (``reference_``: what drift compares
        new data with), made from the decode pass's tap of input rows."""
        from ..monitor.reference import profile_of_fit

        with self._timed("reference"):
            self.reference_ = profile_of_fit(self, tap)

    def _init_centers(self, data, random_state):
        """Initial float64 centres from the init sample (or all rows; k-means||: all rows)."""
        init = self.init
        if isinstance(init, str) and init == "k-means||":  # every row, not the init sample
            return initialization.kmeans_parallel(
                data.chunks,
                data.n_rows,
                data.n_features,
                self.n_clusters,
                random_state,
                rows=getattr(data, "candidates", None),  # a Dask fit's fragments
            )
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

    def _n_starts(self):
        """How many initial centres to try (given centres: one)."""
        return self.n_init if isinstance(self.init, str) else 1

    def _on_dask(self, X, backend, sample_weight):
        """Whether this fit runs on Dask: a Dask DataFrame, or ``backend="dask"``."""
        if backend not in (None, "local", "dask"):
            raise ValueError(f"backend={backend!r}: use 'local' or 'dask'")
        from ..distributed import is_dask_frame

        return backend == "dask" or is_dask_frame(X)

    def _check_params(self):
        """Check the parameters; returns the fit's random stream."""
        self._validate_params()
        return random_stream(self.random_state)

    # ----- prediction --------------------------------------------------------------------
    def iter_assign(self, X, *, columns=None, keep=None, nulls="model", batch_size=None):
        """Stream X through the model: an ``AssignedBatch`` (segment, squared distance, rows
        with a missing feature, the rows in the centres' space, the ``keep`` columns) per
        bounded batch, every row once, in input order. See ``fastseg.cluster.assign``."""
        with thread_limit(self.n_threads):
            yield from iter_assign(
                self, X, columns=columns, keep=keep, nulls=nulls, batch_size=batch_size
            )

    def assign(self, records):
        """Assign one customer in microseconds: ``records`` is a dict of raw column values
        (what the fit read: numbers, and the level of each categorical column), or a list of
        them, or a small polars/pandas frame.

        Returns, for a dict, a dict: ``segment``; ``distance`` (Euclidean, in the centres'
        space); ``runner_up``, the next nearest segment, and ``margin``, how much nearer the
        chosen centre is; ``contributions``, the features that most favour the chosen
        segment over the runner-up, each with its share of the squared-distance gap, its
        value and the two centres' (a category: the share of each segment's customers with
        it); ``explanation``, the same in words; ``unseen``, levels the fit never saw (none
        of its one-hot columns set, as predict does). A list or frame gives a list, in order.
        A missing or unknown field, a wrong type, NaN or infinity is a ``DataError`` naming
        the field; a null is filled as the fit filled, else an error.
        """
        cached = self.__dict__.get("_record_assigner")  # (checked once: it takes 10 µs)
        if (
            cached is None
            or cached[0] is not self.__dict__.get("cluster_centers_")
            or (cached[1] is not self.__dict__.get("preprocessor_"))
        ):
            from .record import RecordAssigner

            self._check_fitted()
            if not self._segments_are_nearest():
                raise FastsegError(
                    f"assign() gives the nearest centre, which is not a {self.estimator_name}'s "
                    "segment: use predict (or predict_proba) for one customer too"
                )
            cached = (self.cluster_centers_, self.preprocessor_, RecordAssigner(self))
            self._record_assigner = cached
        if type(records) is dict or isinstance(records, Mapping):
            return cached[2].assign_one(records)
        if is_pandas_frame(records):
            records = from_pandas(records)
        if isinstance(records, pl.DataFrame):
            records = records.to_dicts()
        return cached[2].assign(list(records))

    def _segments_are_nearest(self):
        """Whether a row's segment is its nearest centre (a mixture's and HDBSCAN's are not)."""
        return type(self)._nearest is Engine._nearest

    def _nearest(self, rows, labels, distances):
        """Each row's segment and squared distance to its centre (``labels``, ``distances``
        OUT), for ``iter_assign``: the nearest centre (a mixture model overrides it with its
        most probable component)."""
        kernels.assign(rows, self._centers64(), labels, distances)

    def _scaled(self, rows):
        """Rows in the space the centres live in (see ``Preprocessor.transform``)."""
        return self.preprocessor_.transform(rows)

    # The fitted preprocessing, as scikit-learn-style attributes (read-only views).
    scale_mean_ = property(lambda self: self._fitted_preprocessor().centre)
    scale_std_ = property(lambda self: self._fitted_preprocessor().spread)
    impute_values_ = property(lambda self: self._fitted_preprocessor().fill_values)
    pca_ = property(lambda self: self._fitted_preprocessor().pca)

    def _fitted_preprocessor(self):
        try:
            return self.__dict__["preprocessor_"]
        except KeyError:
            raise AttributeError("not fitted: no preprocessing yet") from None

    def _centers64(self):
        return np.ascontiguousarray(self.cluster_centers_, dtype=np.float64)

    def predict(self, X, *, columns=None):
        """Index of the nearest centre for each row of X (array, frame, or Parquet path).

        A row with a missing feature is treated as the fit treated one (``missing``): filled
        (``"mean"``, ``"median"``), given no segment, -1 (``"drop"``: the CLI writes a null
        segment), or an error (``"error"``). Rows with a categorical level the fit never saw
        are labelled without it, and counted in an ``UnseenCategoryWarning``. A Dask
        DataFrame gives a lazy Dask Series, computed partition by partition on the workers.
        """
        from ..distributed import is_dask_frame

        if is_dask_frame(X):
            from ..distributed.predict import predict_frame

            return predict_frame(self, X, columns)
        labels = [batch.labels() for batch in self.iter_assign(X, columns=columns)]
        return np.concatenate([np.empty(0, dtype=np.int32), *labels])

    def fit_predict(self, X, y=None, sample_weight=None, **kwargs):
        return self.fit(X, sample_weight=sample_weight, **kwargs).labels_

    def transform(self, X, *, columns=None):
        """Euclidean distance of each row to every centre, in the cluster-centre space (NaN
        for a row with a missing feature the fit's ``missing="drop"`` gives no segment)."""
        out = [np.empty((0, self.n_clusters), dtype=self.cluster_centers_.dtype)]
        centers = self._centers64()
        for batch in self.iter_assign(X, columns=columns):
            present = np.empty((batch.scaled.shape[0], self.n_clusters), dtype=np.float64)
            kernels.all_distances(batch.scaled, centers, present)
            dist = np.full((batch.n_rows, self.n_clusters), np.nan)
            dist[~batch.missing] = present
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
            if w is not None and w.shape[0] < start + dist.shape[0]:
                raise DataError(f"sample_weight has {w.shape[0]} values for more rows than that")
            if w is None:
                total += float(dist.sum())
            else:
                total += float(w[start : start + dist.shape[0]] @ dist)
            start += dist.shape[0]
        if w is not None and w.shape[0] != start:
            raise DataError(f"sample_weight has {w.shape[0]} values for {start} rows")
        return -total

    # ----- the model file (read back by ``fastseg.cluster.modelfile``) ----------------------
    def to_dict(self):
        """Everything needed to assign new rows, plus how the model was made and how well it
        fits. Settings of how a fit ran (threads, memory, temp folder) are left out: the same
        data and seed give the same file whatever they were."""
        doc = self._envelope()
        params = doc["params"]
        if "init" in params and not isinstance(params["init"], str):  # (a mixture has none)
            params["init"] = np.asarray(params["init"], dtype=np.float64).tolist()
        sizes = self._fit_sizes()
        return {
            **doc,
            "preprocessor": self.preprocessor_.to_dict(),
            "dtype": str(self.cluster_centers_.dtype),
            "cluster_centers": np.asarray(self.cluster_centers_, dtype=np.float64).tolist(),
            "metrics": {
                "inertia": _maybe(float, getattr(self, "inertia_", None)),
                "n_iter": _maybe(int, getattr(self, "n_iter_", None)),
                "n_rows": None if sizes is None else int(sizes.sum()),
                "n_rows_dropped": int(getattr(self, "n_rows_dropped_", 0)),
                "cluster_sizes": None if sizes is None else sizes.tolist(),
            },
            **_given("k_selection", getattr(self, "k_selection_", None)),
            **_given("reference", _maybe(lambda r: r.to_dict(), getattr(self, "reference_", None))),
        }

    def _fit_sizes(self):
        """Rows per segment in the fit (a Dask fit counts them on the workers), or None."""
        sizes = getattr(self, "cluster_sizes_", None)
        if sizes is None and hasattr(self, "labels_"):
            sizes = label_counts(self.labels_, self.n_clusters)
        return sizes

    def _restore(self, doc):
        """Set the fitted attributes from a model document, checking every one (predict
        trusts them); a ValueError or KeyError says what is wrong."""
        for name in ("n_clusters", "batch_size"):  # the engines skip scikit-learn's checks
            value = getattr(self, name, None)
            if value is not None and not _positive_int(value):
                raise ValueError(f"{name} must be a positive whole number, not {value!r}")
        if doc["dtype"] not in ("float32", "float64"):
            raise ValueError(f"dtype {doc['dtype']!r} is not float32 or float64")
        pre = Preprocessor.from_dict(doc["preprocessor"])
        centers = np.asarray(doc["cluster_centers"], dtype=np.float64)
        if centers.shape != (self.n_clusters, pre.n_components) or not np.isfinite(centers).all():
            raise ValueError(
                f"cluster_centers must be {self.n_clusters} x {pre.n_components} finite values"
            )
        if np.abs(centers).max(initial=0.0) > 1e150:  # squared distances must stay finite
            raise ValueError("cluster_centers hold values beyond 1e150: no row could be assigned")
        self.preprocessor_ = pre
        self.cluster_centers_ = centers.astype(doc["dtype"])
        self.n_features_in_ = pre.n_features
        if pre.feature_names is not None:
            self.feature_names_in_ = np.asarray(pre.feature_names, dtype=object)
        if pre.levels is not None:
            self.categories_ = pre.levels
        metrics = doc["metrics"]
        for attr in ("inertia", "n_iter"):
            if metrics[attr] is not None:
                setattr(self, attr + "_", metrics[attr])
        self.n_rows_dropped_ = int(metrics["n_rows_dropped"])
        sizes = metrics.get("cluster_sizes")
        if sizes is not None:  # what the fit counted: segment tables of a loaded model
            sizes = np.asarray(sizes, dtype=np.int64)
            if sizes.shape != (self.n_clusters,) or (sizes < 0).any():
                raise ValueError(f"cluster_sizes must be {self.n_clusters} counts")
            self.cluster_sizes_ = sizes
        self._n_features_out = self.n_clusters
        if doc.get("k_selection") is not None:
            self.k_selection_ = _checked_selection(doc["k_selection"], self.n_clusters)
        if doc.get("reference") is not None:
            from ..monitor.reference import ReferenceProfile

            self.reference_ = ReferenceProfile.from_dict(doc["reference"], self.n_clusters)


def _given(name, value):
    """{name: value} if there is a value (a model file has the field only then)."""
    return {} if value is None else {name: value}


SCORES = ("inertia", "silhouette", "davies_bouldin", "calinski_harabasz")


def _checked_selection(doc, k):
    """The selection of k a model file keeps (``k_selection``), checked: the report draws it."""
    scores = doc["scores"]
    ks = [s["k"] for s in scores]
    if not scores or doc["k_range"] != ks or not all(_positive_int(v) for v in ks):
        raise ValueError("k_selection must score each k of its k_range, in order")
    if k not in ks or doc["decided_by"] not in ("knee", "silhouette"):
        raise ValueError(f"k_selection must hold this model's k ({k}) and say what decided")
    for score in scores:
        if not all(isinstance(score[f], int | float) for f in SCORES):
            raise ValueError(f"k_selection scores of k={score['k']} must be numbers")
    return doc


def _maybe(kind, value):
    return None if value is None else kind(value)


def _positive_int(value):
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 1
