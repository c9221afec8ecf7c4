"""The scikit-learn estimators: the engines with scikit-learn's parameter checks and API.

``KMeans`` and ``MiniBatchKMeans`` work with ``clone``, pipelines, grid search and
``check_estimator``; everything they compute is in ``fastseg.cluster.lloyd`` and
``fastseg.cluster.minibatch``.
"""

import os
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
)
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ..preprocess.settings import MISSING_POLICIES, SCALINGS
from .engine import Engine
from .lloyd import LloydEngine
from .minibatch import MiniBatchEngine


class ScikitLearnAPI(
    ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin, BaseEstimator
):
    """scikit-learn's checks in the engine's hooks; comes first in the estimators' bases.

    As scikit-learn's k-means, a transformer to distances from the centres: output features
    ``<class name lower><i>`` (``get_feature_names_out``, from ``ClassNamePrefixFeaturesOutMixin``)
    and ``set_output`` containers (``TransformerMixin``), which wrap the methods defined here.
    """

    _parameter_constraints = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"k-means++", "k-means||", "random"}), "array-like"],
        "n_init": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "memory_budget": [Interval(Integral, 1, None, closed="left"), None],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
        "init_size": [Interval(Integral, 1, None, closed="left"), None],
        "scale": [StrOptions(set(SCALINGS))],
        "log1p": ["array-like", None],
        "derive": [list, None],
        "categorical": [list, None],
        "category_weight": [Interval(Real, 0, None, closed="neither"), None],
        "pca": [
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="right"),
            None,
        ],
        "missing": [StrOptions(set(MISSING_POLICIES))],
        "spill_dir": [str, os.PathLike, None],
    }

    # n_init="auto" with init="random": scikit-learn's number of starts (KMeans 10, MiniBatch 3).
    _auto_n_init_random = None

    # The mixins' versions would come before the engine's in the method order; set_output wraps
    # transform and fit_transform because they are defined on this class.
    fit_predict = Engine.fit_predict
    transform = Engine.transform

    def fit_transform(self, X, y=None, sample_weight=None, **kwargs):
        """Fit, then the distance of each row of X to every centre (see ``transform``)."""
        # Engine.transform, not self.transform: that one is wrapped for set_output already.
        fitted = self.fit(X, sample_weight=sample_weight, **kwargs)
        return Engine.transform(fitted, X, columns=kwargs.get("columns"))

    def _n_starts(self):
        """n_init as scikit-learn resolves "auto": one start for k-means++ or given centres,
        ``_auto_n_init_random`` for random ones (kept in ``_n_init``; ``n_init`` stays as
        given)."""
        if not isinstance(self.init, str):
            self._n_init = 1
        elif self.n_init == "auto":
            self._n_init = self._auto_n_init_random if self.init == "random" else 1
        else:
            self._n_init = self.n_init
        return self._n_init

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _check_fitted(self):
        check_is_fitted(self)

    def _check_array(self, X, reset):
        return validate_data(
            self,
            X,
            dtype=[np.float64, np.float32],
            order="C",
            accept_large_sparse=False,
            reset=reset,
        )


class KMeans(ScikitLearnAPI, LloydEngine):
    """Exact Lloyd k-means, scikit-learn compatible, on arrays, frames or Parquet bigger than RAM.

    Parameters
    ----------
    n_clusters : int, default=8
    init : {"k-means++", "k-means||", "random"} or array of shape (n_clusters, n_features)
        Greedy k-means++ as in scikit-learn. On data larger than ``init_size`` rows it runs on a
        uniform sample drawn during the decode pass. "k-means||" (Bahmani et al. 2012) runs on
        every row instead, chunk by chunk: 5 rounds drawing about 2k candidates each, reduced
        to k by weighted k-means++ and Lloyd (``fastseg.cluster.initialization``).
    n_init : int or "auto", default=1
        Runs with different initial centres; the lowest inertia wins. "auto" as scikit-learn:
        1 run for ``init="k-means++"`` or given centres, 10 for ``init="random"``.
    max_iter, tol : as scikit-learn (``tol`` is relative to the mean feature variance).
    random_state : int, RandomState or None
    batch_size : int, optional
        Rows per streamed batch (default ``config.batch_size``); bounds working memory.
    memory_budget : int, optional
        Bytes the decoded rows may take in RAM before they spill to a file on local disk
        (default: ``config.memory_fraction`` of physical memory).
    n_threads : int, optional
        Threads for the Numba kernels (default: all).
    verbose : int
    init_size : int, optional
        Rows k-means++ runs on (default ``config.init_size``).
    scale : {"none", "standard", "minmax", "robust"}
        Map each feature to ``(x - centre) / spread`` before clustering: mean and standard
        deviation, minimum and range, or median and interquartile range (quantiles of a uniform
        1M-row sample: exact below it). Taken in the decode pass; stored and replayed by
        predict.
    log1p : list of column names (or indices for arrays), optional
        Features to take ``log(1 + x)`` of before scaling: skewed money and usage columns.
    derive : list of str, optional
        Columns computed from the others before anything else, each "name = expression" in
        SQL syntax (polars' ``sql_expr``), e.g. ``"total_spend = mnt_wines + mnt_meat"``; name
        them in ``columns`` to cluster on them. Stored in the model; predict derives them again.
    categorical : list of column names, optional
        Columns to one-hot encode (frames and Parquet): the levels seen while fitting become
        columns ``"<column>=<level>"`` worth ``category_weight`` (default 1/√2, so two rows in
        different categories are as far apart as one standard deviation of a scaled feature)
        where the row has the level, 0 elsewhere; they are not scaled. Levels are in
        ``categories_``. A level never seen in the fit (or a null) sets none of them, and is
        counted when labels are written.
    category_weight : float, optional
    pca : int or float, optional
        Cluster on principal components of the scaled features: this many, or as many as keep
        this share of the variance (e.g. 0.9). Fitted from a float64 covariance accumulated in
        one pass; equal to scikit-learn's PCA (components signed as it signs them).
        ``pca_`` holds ``components``, ``mean``, ``explained_variance`` and
        ``explained_variance_ratio``; ``cluster_centers_`` are in component space.
    missing : {"error", "drop", "mean", "median"}
        What to do with rows whose features hold nulls (frames and Parquet): stop, drop them
        (their positions in ``dropped_rows_``), or fill the gaps with the feature's mean or
        median (stored; predict fills with them too).
    spill_dir : str, optional
        Folder for the spill file (default: the system temp folder).
    algorithm : {"auto", "lloyd", "hamerly"}
        "hamerly" keeps a lower distance bound per row (4 bytes) so rows whose centre cannot
        change skip the search, and only rows that changed centre update the sums; labels are
        those of "lloyd", centres equal up to float64 rounding.
        "auto" uses it when the rows are in RAM.

    Attributes
    ----------
    cluster_centers_, labels_, inertia_, n_iter_, n_features_in_, feature_names_in_ :
        as scikit-learn. ``cluster_centers_`` are in the scaled space when ``scale`` is set.
    scale_mean_, scale_std_ : scaling applied before clustering, or None.
    n_rows_dropped_ : rows dropped for missing values.
    dropped_rows_ : their positions in the input (int64, in order); ``labels_`` are the labels
        of the other rows, in order.
    timings_ : dict
        Seconds the last fit spent reading the input ("read": decoding, checks, moments,
        caching the rows), preparing it ("preprocess": scaling, drawing the init sample),
        choosing initial centres ("init"), iterating ("iterations") and making the
        reference profile ("reference").
    reference_ : ReferenceProfile
        What ``fastseg.drift`` compares new data with: decile bins, quantiles, mean
        and std of each feature, category shares, segment shares and distance quantiles,
        from a uniform sample of ``config.reference_rows`` input rows and exact counts
        (``fastseg.monitor.reference``). Saved in the model file.
    """

    _parameter_constraints = {
        **ScikitLearnAPI._parameter_constraints,
        "algorithm": [StrOptions({"auto", "lloyd", "hamerly"})],
    }
    _auto_n_init_random = 10


class MiniBatchKMeans(ScikitLearnAPI, MiniBatchEngine):
    """Mini-batch k-means (Sculley 2010) as scikit-learn runs it, on data of any size.

    How it runs: :class:`fastseg.cluster.minibatch.MiniBatchEngine`.

    Parameters are scikit-learn's (``batch_size`` is the mini-batch size) plus ``memory_budget``,
    ``n_threads``, ``spill_dir`` and the preprocessing (``scale``, ``log1p``, ``derive``,
    ``missing``, ``categorical``, ``category_weight``, ``pca``) as in :class:`fastseg.KMeans`.
    ``timings_`` gives the seconds of the last fit per phase: "read", "preprocess", "init",
    "iterations" (the mini-batch steps), "labels" (the final pass labelling every row) and
    "reference" (the reference profile, ``reference_``, as in :class:`fastseg.KMeans`;
    ``partial_fit`` drops it: the centres then move away from the data it describes).
    ``n_init`` (the starts tried on the init sample, best kept) may be "auto" as in
    scikit-learn: 1 for ``init="k-means++"`` or given centres, 3 for ``init="random"``.
    """

    _parameter_constraints = {
        **ScikitLearnAPI._parameter_constraints,
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "compute_labels": ["boolean"],
        "max_no_improvement": [Interval(Integral, 0, None, closed="left"), None],
        "reassignment_ratio": [Interval(Real, 0, None, closed="left")],
    }
    _auto_n_init_random = 3
