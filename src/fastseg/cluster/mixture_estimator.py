"""``GaussianMixture``: the mixture engine with scikit-learn's parameter checks and API.

Everything it computes is in ``fastseg.cluster.mixture``; this module adds scikit-learn's
validation (so it works with ``clone``, pipelines and grid search) and its
``ConvergenceWarning``. Unlike ``KMeans`` it is no transformer: scikit-learn's mixture has
no ``transform`` either.
"""

import warnings
from numbers import Integral, Real

from sklearn.base import BaseEstimator, ClusterMixin, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from .engine import Engine
from .estimators import ScikitLearnAPI
from .mixture import COVARIANCE_TYPES, GaussianMixtureEngine

# The input, preprocessing and resource parameters, checked as for KMeans.
_SHARED = {
    name: rule
    for name, rule in ScikitLearnAPI._parameter_constraints.items()
    if name not in ("n_clusters", "init", "n_init", "max_iter", "tol")
}


class GaussianMixture(ClusterMixin, DensityMixin, BaseEstimator, GaussianMixtureEngine):
    """Gaussian mixture by exact streaming EM, scikit-learn compatible, on arrays, frames or
    Parquet bigger than RAM.

    Equal to scikit-learn's ``GaussianMixture`` from the same initialisation (to rounding:
    the sums are float64 from the float32 rows, in a fixed block order), with the same
    k-means initialisation (``init_params="kmeans"``), convergence rule and attributes.

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {"full", "diag"}, default="full"
    tol : float, default=1e-3
        Stop when the mean log-likelihood per row changes by less than this.
    reg_covar : float, default=1e-6
        Added to the covariances' diagonals, so they stay positive definite.
    max_iter : int, default=100
        EM iterations, one pass over the data each.
    n_init : int, default=1
        k-means starts, each followed by EM; the highest final lower bound wins.
    random_state : int, RandomState or None
    batch_size, memory_budget, n_threads, verbose, init_size, scale, log1p, derive, pca,
    categorical, category_weight, missing, spill_dir :
        As in :class:`fastseg.KMeans` (``init_size``: rows the initialising k-means++ runs on).

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_, converged_, n_iter_,
    lower_bound_ : as scikit-learn's.
    cluster_centers_ : the means, in the data's dtype (what segment tables show).
    labels_ : the most probable component of each training row.
    bic_, aic_ : BIC and AIC of the training data, from the last pass of the fit.
    inertia_ : weighted sum of squared distances of the rows to their component's mean.
    timings_ : seconds per phase: "read", "preprocess", "init" (k-means and the first
        moments), "iterations" (EM), "labels" (the final pass), "reference".
    """

    _parameter_constraints = {
        **_SHARED,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions(set(COVARIANCE_TYPES))],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
    }

    # scikit-learn's checks in the engine's hooks, as for KMeans.
    _check_fitted = ScikitLearnAPI._check_fitted
    _check_array = ScikitLearnAPI._check_array
    # The mixins' versions would come before the engine's in the method order.
    fit_predict = Engine.fit_predict
    score = GaussianMixtureEngine.score

    def fit(self, X, y=None, sample_weight=None, **kwargs):
        """Fit the mixture (see ``GaussianMixtureEngine.fit``); a ``ConvergenceWarning`` as
        scikit-learn's when EM stopped on ``max_iter``."""
        super().fit(X, y, sample_weight=sample_weight, **kwargs)
        if not self.converged_:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self
