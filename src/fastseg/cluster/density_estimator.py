"""``HDBSCAN``: the sampled HDBSCAN engine (``cluster.density``) with scikit-learn's parameter
checks and API (``clone``, pipelines, grid search).

Unlike scikit-learn's ``HDBSCAN`` it predicts: a new row takes the segment of its nearest
stored sample point. Like it (and unlike ``KMeans``) it is no transformer.
"""

from numbers import Integral

from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils._param_validation import Interval

from .density import HDBSCANEngine
from .engine import Engine
from .estimators import ScikitLearnAPI

# The input, preprocessing and resource parameters, checked as for KMeans.
_SHARED = {
    name: rule
    for name, rule in ScikitLearnAPI._parameter_constraints.items()
    if name not in ("n_clusters", "init", "n_init", "max_iter", "tol", "init_size")
}


class HDBSCAN(ClusterMixin, BaseEstimator, HDBSCANEngine):
    """scikit-learn's HDBSCAN on a uniform sample of at most ``sample_size`` rows, extended
    to every row (and to new rows by ``predict``) by the nearest stored sample point, on
    arrays, frames or Parquet bigger than RAM.

    On data of at most ``sample_size`` rows, with ``max_stored`` at least as many, the labels
    are scikit-learn's (clusters renumbered 0..k-1 in its order, noise k instead of -1).

    Parameters
    ----------
    min_cluster_size : int, optional
        As scikit-learn's; default max(5, 0.5 % of the sample rows), so that the segments of
        a 200,000-row sample hold at least 1,000 rows.
    min_samples : int or None, default=10
        As scikit-learn's (None: ``min_cluster_size``, its default, which at 200,000 rows took
        over 3 GB and 300 s; 10 took 0.5 GB and 170 s).
    sample_size : int, default=200_000
        Rows HDBSCAN runs on (uniformly drawn in the decode pass); its time grows with their
        square.
    max_stored : int, default=10_000
        Sample points kept in the model to label other rows by: a share of each segment, in
        proportion to its size, at least one each.
    random_state : int, RandomState or None
        Draws the sample and the stored points.
    requested_k : int, optional
        Ignored: HDBSCAN finds the number of segments (``fastseg fit --k`` lands here).
    batch_size, memory_budget, n_threads, verbose, scale, log1p, derive, pca, categorical,
    category_weight, missing, spill_dir :
        As in :class:`fastseg.KMeans`.

    Attributes
    ----------
    n_clusters : the segments found, the noise segment included.
    noise_segment_ : the noise segment's number, or None when every sampled row clustered.
    labels_ : the segment of each training row (its nearest stored point's).
    cluster_centers_ : each segment's mean over the sample (the noise's too): what profiles
        and reports show; predict does not use them.
    stored_points_, stored_labels_ : the points predict labels by, in the centres' space.
    inertia_ : sum of squared distances of the rows to their nearest stored point.
    min_cluster_size_, n_sample_rows_ : the resolved min_cluster_size, the rows clustered.
    timings_ : seconds per phase: "read", "preprocess", "hdbscan", "labels", "reference".
    """

    _parameter_constraints = {
        **_SHARED,
        "min_cluster_size": [Interval(Integral, 2, None, closed="left"), None],
        "min_samples": [Interval(Integral, 1, None, closed="left"), None],
        "sample_size": [Interval(Integral, 2, None, closed="left")],
        "max_stored": [Interval(Integral, 1, None, closed="left")],
        "requested_k": [Interval(Integral, 1, None, closed="left"), None],
    }

    # scikit-learn's checks in the engine's hooks, as for KMeans.
    _check_fitted = ScikitLearnAPI._check_fitted
    _check_array = ScikitLearnAPI._check_array
    fit_predict = Engine.fit_predict  # the mixin's would come before the engine's
