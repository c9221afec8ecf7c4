"""Gaussian mixtures by exact EM over data decoded once: in RAM, or streamed back from a
spill file.

EM needs only sums over rows (the sufficient statistics): per component the responsibility
mass, the responsibility-weighted first and second moments, and the log-likelihood. One pass
per iteration accumulates them block by block in the fixed summation tree
(``reduction.FragmentSums``), so the model does not depend on batch size or on whether the
rows were spilled. The arithmetic follows scikit-learn's ``GaussianMixture`` (k-means
initialisation, ``10 * eps`` added to each component's mass, ``reg_covar`` on the diagonal,
Cholesky factors of the precisions, convergence on the change of the mean log-likelihood),
in float64 from the float32 rows, so on data that fits in memory the two agree to rounding.

The second moments are taken around a shift per component (its mean before the M-step, or
its k-means centre for the initialisation), not around zero: the covariance is then a small
correction of a sum of small numbers, without the cancellation of ``E[xx'] - mu mu'`` on
data far from the origin.
"""

import math
from numbers import Integral

import numpy as np

from .. import config
from ..errors import DataError
from ..io.store import anonymous_array
from ..progress import report
from .engine import Engine, _maybe
from .lloyd import LloydEngine
from .reduction import FragmentSums

COVARIANCE_TYPES = ("full", "diag")
LOG_2PI = math.log(2.0 * math.pi)
EPS = np.finfo(np.float64).eps

ILL_DEFINED = (
    "Fitting the mixture model failed because some components have ill-defined empirical "
    "covariance (for instance caused by singleton or collapsed samples). Try to decrease the "
    "number of components, increase reg_covar, or scale the input data."
)


class Mixture:
    """Weights, means and Cholesky factors of the precisions: what the E-step needs."""

    def __init__(self, weights, means, precisions_chol, covariance_type):
        self.weights = weights
        self.means = means
        self.precisions_chol = precisions_chol
        self.full = covariance_type == "full"
        d = means.shape[1]
        diag = precisions_chol.reshape(means.shape[0], -1)[:, :: d + 1] if self.full else None
        # log det of the precision's Cholesky factor = -1/2 log det of the covariance
        self.log_det = np.log(diag if self.full else precisions_chol).sum(axis=1)
        with np.errstate(divide="ignore"):  # an empty component: weight 0, log -inf
            self.log_weights = np.log(weights)

    def centred(self, X):
        """X minus each component's mean: (k, rows, features)."""
        return X[None, :, :] - self.means[:, None, :]

    def weighted_log_prob(self, centred):
        """log(weight_k) + log N(x | mean_k, cov_k) of each row (rows, k), as scikit-learn."""
        k, b, d = centred.shape
        squares = np.empty((b, k))
        for j in range(k):
            y = (
                centred[j] @ self.precisions_chol[j]
                if self.full
                else centred[j] * self.precisions_chol[j]
            )
            squares[:, j] = np.einsum("ij,ij->i", y, y)
        return -0.5 * (d * LOG_2PI + squares) + self.log_det + self.log_weights

    def responsibilities(self, X):
        """(responsibilities, log p(x), centred rows) of a block of float64 rows."""
        centred = self.centred(X)
        log_prob = self.weighted_log_prob(centred)
        norm = log_sum_exp(log_prob)
        with np.errstate(under="ignore"):
            resp = np.exp(log_prob - norm[:, None])
        return resp, norm, centred


def log_sum_exp(a):
    """log(sum(exp(a))) of each row, without overflow (the largest term taken out)."""
    top = a.max(axis=1)
    shift = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore", under="ignore"):
        return np.log(np.exp(a - shift[:, None]).sum(axis=1)) + shift


def precision_cholesky(covariances, covariance_type):
    """Cholesky factors of the precisions, as scikit-learn's ``_compute_precision_cholesky``:
    full: ``inv(cholesky(cov)).T``; diag: ``1 / sqrt(cov)``. An ill-defined covariance is
    scikit-learn's ValueError (a ``DataError`` here)."""
    if covariance_type == "diag":
        if (covariances <= 0.0).any():
            raise DataError(ILL_DEFINED)
        return 1.0 / np.sqrt(covariances)
    k, d, _ = covariances.shape
    out = np.empty_like(covariances)
    for j in range(k):
        try:
            chol = np.linalg.cholesky(covariances[j])
        except np.linalg.LinAlgError:
            raise DataError(ILL_DEFINED) from None
        # inv(chol) is lower triangular: the zeros a general solve leaves at 1e-17, exact
        out[j] = np.triu(np.linalg.solve(chol, np.eye(d)).T)
    return out


class Moments:
    """Sums of one pass: mass ``s0`` (k), first ``s1`` (k, d) and second ``s2`` (k, d, d or
    k, d) moments around the shifts, and the weighted log-likelihood and weight of the rows."""

    def __init__(self, sums, k, d, full):
        q = d * d if full else d
        self.s0 = sums[:k]
        self.s1 = sums[k : k + k * d].reshape(k, d)
        self.s2 = sums[k + k * d : k + k * (d + q)].reshape((k, d, d) if full else (k, d))
        self.log_likelihood, self.weight = float(sums[-2]), float(sums[-1])

    @staticmethod
    def size(k, d, full):
        return k * (1 + d + (d * d if full else d)) + 2


def block_moments(centred, w, resp, norm, full):
    """One block's partial of the moments (``Moments`` layout); ``centred`` (k, rows, d)."""
    rw = resp * w[:, None]
    k, _, d = centred.shape
    first = np.empty((k, d))
    second = np.empty((k, d, d) if full else (k, d))
    for j in range(k):
        first[j] = rw[:, j] @ centred[j]
        if full:
            second[j] = (centred[j].T * rw[:, j]) @ centred[j]
        else:
            second[j] = rw[:, j] @ (centred[j] * centred[j])
    tail = [float(w @ norm), float(w.sum())]
    return np.concatenate([rw.sum(axis=0), first.ravel(), second.ravel(), tail])


def blocks(data):
    """(first row, float64 rows, weights) of each reduction block, in order."""
    B = config.BLOCK_ROWS
    for start, rows, w in data.chunks():
        for s in range(0, rows.shape[0], B):  # chunks start on block boundaries
            yield start + s, rows[s : s + B].astype(np.float64), w[s : s + B]


def moments_pass(data, shifts, full, responsibilities):
    """One pass over ``data``: the ``Moments`` of ``responsibilities(X, first_row)`` (which
    gives (resp, log p(x) or zeros)) around ``shifts``, block by block in the fixed tree."""
    k, d = shifts.shape
    sums = FragmentSums(Moments.size(k, d, full))
    for first, X, w in blocks(data):
        resp, norm = responsibilities(X, first)
        centred = X[None, :, :] - shifts[:, None, :]
        sums.add(block_moments(centred, w, resp, norm, full), X.shape[0])
    return Moments(sums.close(), k, d, full)


def em_pass(data, mixture):
    """The E-step of one iteration, as moments around the current means (reusing the
    centred rows the log-probabilities needed)."""
    k, d = mixture.means.shape
    sums = FragmentSums(Moments.size(k, d, mixture.full))
    for _, X, w in blocks(data):
        resp, norm, centred = mixture.responsibilities(X)
        sums.add(block_moments(centred, w, resp, norm, mixture.full), X.shape[0])
    return Moments(sums.close(), k, d, mixture.full)


def estimate_parameters(moments, shifts, reg_covar, full):
    """(mass, means, covariances) from the moments, as scikit-learn's
    ``_estimate_gaussian_parameters`` (mass + 10 eps, ``reg_covar`` on the diagonal)."""
    s0, s1, s2 = moments.s0, moments.s1, moments.s2
    nk = s0 + 10 * EPS
    means = (s1 + s0[:, None] * shifts) / nk[:, None]
    delta = means - shifts  # sum r (x-m)(x-m)' = S2 - delta S1' - S1 delta' + s0 delta delta'
    if full:
        cross = delta[:, :, None] * s1[:, None, :]
        outer = delta[:, :, None] * delta[:, None, :]
        scatter = s2 - cross - cross.transpose(0, 2, 1) + s0[:, None, None] * outer
        scatter = 0.5 * (scatter + scatter.transpose(0, 2, 1))  # symmetric to the bit
        covariances = scatter / nk[:, None, None]
        d = means.shape[1]
        covariances[:, np.arange(d), np.arange(d)] += reg_covar
    else:
        covariances = (s2 - 2.0 * delta * s1 + s0[:, None] * delta**2) / nk[:, None] + reg_covar
    return nk, means, covariances


def n_parameters(k, d, covariance_type):
    """Free parameters of the mixture (scikit-learn's ``_n_parameters``): for BIC and AIC."""
    cov = k * d * (d + 1) / 2.0 if covariance_type == "full" else k * d
    return int(cov + d * k + k - 1)


def most_probable(mixture, X):
    """(most probable component, squared distance to its mean, log p(x)) of float64 rows."""
    centred = mixture.centred(X)
    log_prob = mixture.weighted_log_prob(centred)
    labels = log_prob.argmax(axis=1)
    own = centred[labels, np.arange(X.shape[0])]
    return labels, np.einsum("ij,ij->i", own, own), log_sum_exp(log_prob)


def float64_blocks(rows):
    """The rows as float64, a reduction block at a time (the fit's block shapes: the same
    per-row arithmetic whatever the batch)."""
    for s in range(0, rows.shape[0], config.BLOCK_ROWS):
        yield rows[s : s + config.BLOCK_ROWS].astype(np.float64)


class GaussianMixtureEngine(Engine):
    """A Gaussian mixture by exact streaming EM, without scikit-learn (what
    ``fastseg.GaussianMixture`` and the CLI run). ``n_clusters`` is ``n_components``: the
    segments are the components, each row's the most probable one."""

    estimator_name = "GaussianMixture"
    _run_settings = (*Engine._run_settings, "batch_size")  # rows per streamed batch

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        random_state=None,
        batch_size=None,
        memory_budget=None,
        n_threads=None,
        verbose=0,
        init_size=None,
        scale="none",
        log1p=None,
        derive=None,
        pca=None,
        categorical=None,
        category_weight=None,
        missing="error",
        spill_dir=None,
    ):
        self._keep_params(locals())

    @property
    def n_clusters(self):
        """The segments are the components (what the shared machinery counts)."""
        return self.n_components

    def _sample_size(self):
        """Rows k-means++ (the initialisation's k-means) runs on."""
        return max(self.n_components, self.init_size or self._default_init_size())

    def fit(self, X, y=None, sample_weight=None, *, columns=None):
        """Fit the mixture to X: an array, a pandas/polars/Arrow table, or data files
        (Parquet, CSV, NDJSON) with ``columns``. ``sample_weight``: a weight per row (a row of
        weight w counts as w rows), or the name of the table's column holding them."""
        with self._decoded(X, sample_weight, columns) as (data, random_state):
            self._fit_data(data, random_state)
        return self

    def _fit_data(self, data, random_state):
        """Run ``n_init`` k-means starts and EM from each; keep the highest lower bound."""
        best = None
        for run in range(self.n_init):  # as scikit-learn: each start's k-means, then its EM
            with self._timed("init"):
                start = self._initial_mixture(data, random_state)
            with self._timed("iterations"):
                result = self._em(data, start, run)
            if best is None or result[2] > best[2]:
                best = result
        data.release_sample()
        self._set_mixture(*best, dtype=data.dtype)
        with self._timed("labels"):
            self._final_pass(data)

    def _initial_mixture(self, data, random_state):
        """(weights, means, covariances) from k-means labels as one-hot responsibilities, as
        scikit-learn's ``init_params="kmeans"`` (weights: mass / total weight)."""
        kmeans = LloydEngine(self.n_components, verbose=self.verbose)
        kmeans.timings_ = {}
        kmeans._fit_data(data, random_state, keep_sample=True)
        labels, k = kmeans.labels_, self.n_components
        # float32 centres as shifts: Hamerly's and plain Lloyd's centres may differ by float64
        # rounding, which the shifts would carry into the sums.
        shifts = kmeans.cluster_centers_.astype(np.float32).astype(np.float64)

        def one_hot(X, first):
            resp = np.zeros((X.shape[0], k))
            resp[np.arange(X.shape[0]), labels[first : first + X.shape[0]]] = 1.0
            return resp, np.zeros(X.shape[0])

        full = self.covariance_type == "full"
        moments = moments_pass(data, shifts, full, one_hot)
        nk, means, covariances = estimate_parameters(moments, shifts, self.reg_covar, full)
        return nk / moments.weight, means, covariances

    def _em(self, data, start, run):
        """EM from (weights, means, covariances); returns (mixture, covariances, lower bound,
        converged, n_iter). Stops as scikit-learn when the mean log-likelihood of a pass
        (before its M-step) changes by less than ``tol``."""
        weights, means, covariances = start
        kind, full = self.covariance_type, self.covariance_type == "full"
        mixture = Mixture(weights, means, precision_cholesky(covariances, kind), kind)
        lower_bound, converged, n_iter = -np.inf, False, 0
        stage = "EM" if self.n_init == 1 else f"EM {run + 1}/{self.n_init}"
        for n_iter in range(1, self.max_iter + 1):
            previous = lower_bound
            moments = em_pass(data, mixture)
            lower_bound = moments.log_likelihood / moments.weight
            nk, means, covariances = estimate_parameters(
                moments, mixture.means, self.reg_covar, full
            )
            mixture = Mixture(nk / nk.sum(), means, precision_cholesky(covariances, kind), kind)
            change = lower_bound - previous
            if self.verbose:
                print(f"Iteration {n_iter}, log-likelihood/row {lower_bound:.8g}, Δ {change:.3g}")
            report(stage, n_iter, self.max_iter)
            if abs(change) < self.tol:
                converged = True
                break
        report(stage, self.max_iter, self.max_iter)
        return mixture, covariances, lower_bound, converged, n_iter

    def _set_mixture(self, mixture, covariances, lower_bound, converged, n_iter, dtype):
        """The fitted attributes, named as scikit-learn's."""
        self.weights_ = mixture.weights
        self.means_ = mixture.means
        self.covariances_ = covariances
        self.precisions_cholesky_ = mixture.precisions_chol
        if mixture.full:
            chol = mixture.precisions_chol
            self.precisions_ = chol @ chol.transpose(0, 2, 1)
        else:
            self.precisions_ = mixture.precisions_chol**2
        self.lower_bound_ = float(lower_bound)
        self.converged_ = bool(converged)
        self.n_iter_ = int(n_iter)
        self.cluster_centers_ = mixture.means.astype(dtype)
        self._n_features_out = self.n_components

    def _final_pass(self, data):
        """Labels, inertia, BIC and AIC of the fitted model on its data: one more E-step (so
        ``labels_`` agree with ``predict``, as scikit-learn's final E-step)."""
        mixture = self._mixture()
        labels = anonymous_array(data.n_rows, np.int32)
        sums = FragmentSums(3)  # weighted log p(x), weight, weighted squared distance
        for first, X, w in blocks(data):
            label, dist, norm = most_probable(mixture, X)
            labels[first : first + X.shape[0]] = label
            sums.add(np.array([w @ norm, w.sum(), w @ dist]), X.shape[0])
        log_likelihood, weight, inertia = sums.close()
        self.labels_ = labels
        self.inertia_ = float(inertia)
        self.bic_, self.aic_ = self._criteria(float(log_likelihood), float(weight))

    def _criteria(self, log_likelihood, n):
        """(BIC, AIC) as scikit-learn: -2 log L + p log n, -2 log L + 2 p."""
        p = n_parameters(self.n_components, self.means_.shape[1], self.covariance_type)
        return -2.0 * log_likelihood + p * math.log(n), -2.0 * log_likelihood + 2.0 * p

    def _renumber_components(self, order):
        """Make old component ``order[i]`` component i in the mixture's parameters (what
        renumbering segments must do besides permuting ``cluster_centers_`` and ``labels_``)."""
        for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
            setattr(self, name, getattr(self, name)[order])

    def _mixture(self):
        return Mixture(self.weights_, self.means_, self.precisions_cholesky_, self.covariance_type)

    # ----- prediction --------------------------------------------------------------------
    def _nearest(self, rows, labels, distances):
        """The most probable component of each row, and its squared distance to that
        component's mean (what predict, transform's labels and the labels file give)."""
        mixture = self._mixture()
        s = 0
        for X in float64_blocks(rows):
            labels[s : s + X.shape[0]], distances[s : s + X.shape[0]], _ = most_probable(mixture, X)
            s += X.shape[0]

    def _per_block(self, X, columns, value):
        """Yield (batch, [value(mixture, block) per block of its complete rows]) for X."""
        self._check_fitted()
        mixture = self._mixture()
        for batch in self.iter_assign(X, columns=columns):
            yield batch, [value(mixture, rows) for rows in float64_blocks(batch.scaled)]

    def _per_row(self, X, columns, value, width=None):
        """``value`` of each row of X, streamed; NaN for rows that get no segment."""
        shape = (0,) if width is None else (0, width)
        out = [np.empty(shape)]
        for batch, parts in self._per_block(X, columns, value):
            rows = np.full((batch.n_rows, *shape[1:]), np.nan)
            rows[~batch.missing] = np.concatenate([np.empty(shape), *parts])
            out.append(rows)
        return np.concatenate(out)

    def predict_proba(self, X, *, columns=None):
        """Probability of each component given each row (n_samples, n_components); rows sum
        to 1 (NaN for a row the model gives no segment)."""
        return self._per_row(
            X, columns, lambda m, rows: m.responsibilities(rows)[0], self.n_components
        )

    def score_samples(self, X, *, columns=None):
        """Log density log p(x) of each row under the mixture."""
        return self._per_row(X, columns, _log_density)

    def _log_likelihood(self, X, columns):
        """(sum of log p(x), rows scored) over X in one pass, summed in the fixed tree."""
        sums = FragmentSums(2)
        for _, parts in self._per_block(X, columns, _log_density):
            for part in parts:
                sums.add(np.array([part.sum(), part.shape[0]]), part.shape[0])
        total, n = sums.close()
        return float(total), float(n)

    def score(self, X, y=None, *, columns=None):
        """Mean log-likelihood per row of X (scikit-learn's score of a mixture)."""
        total, n = self._log_likelihood(X, columns)
        return total / n

    def bic(self, X, *, columns=None):
        """Bayesian information criterion on X (one pass): lower is better."""
        return self._criteria(*self._log_likelihood(X, columns))[0]

    def aic(self, X, *, columns=None):
        """Akaike information criterion on X (one pass): lower is better."""
        return self._criteria(*self._log_likelihood(X, columns))[1]

    # ----- the model file ----------------------------------------------------------------
    def to_dict(self):
        """The model file's document: the shared fields (``Engine.to_dict``'s) plus
        "mixture", everything predict_proba and score need."""
        doc = super().to_dict()
        doc["mixture"] = {
            "covariance_type": self.covariance_type,
            "weights": self.weights_.tolist(),
            "means": self.means_.tolist(),
            "covariances": self.covariances_.tolist(),
            "lower_bound": _maybe(float, getattr(self, "lower_bound_", None)),
            "converged": _maybe(bool, getattr(self, "converged_", None)),
            "n_iter": _maybe(int, getattr(self, "n_iter_", None)),
            "bic": _maybe(float, getattr(self, "bic_", None)),
            "aic": _maybe(float, getattr(self, "aic_", None)),
        }
        return doc

    def _restore(self, doc):
        """The shared fields (``Engine._restore``), then the mixture, each value checked."""
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be 'full' or 'diag', not {self.covariance_type!r}"
            )
        super()._restore(doc)
        m = doc["mixture"]
        if m["covariance_type"] != self.covariance_type:
            raise ValueError("the mixture's covariance_type differs from the parameters'")
        k, d = self.cluster_centers_.shape
        full = self.covariance_type == "full"
        weights = _finite_array(m["weights"], (k,), "weights")
        if (weights < 0).any() or abs(weights.sum() - 1.0) > 1e-6:
            raise ValueError("the mixture's weights must be non-negative and sum to 1")
        means = _finite_array(m["means"], (k, d), "means")
        if not np.array_equal(means.astype(self.cluster_centers_.dtype), self.cluster_centers_):
            raise ValueError("cluster_centers must be the mixture's means")
        covariances = _finite_array(m["covariances"], (k, d, d) if full else (k, d), "covariances")
        if full and not np.array_equal(covariances, covariances.transpose(0, 2, 1)):
            raise ValueError("the mixture's covariances must be symmetric")
        chol = precision_cholesky(covariances, self.covariance_type)  # positive definite?
        if not isinstance(m["converged"], bool) or not _count(m["n_iter"]):
            raise ValueError("the mixture's converged must be true or false, n_iter a count")
        mixture = Mixture(weights, means, chol, self.covariance_type)
        dtype = self.cluster_centers_.dtype
        self._set_mixture(mixture, covariances, 0.0, m["converged"], m["n_iter"], dtype=dtype)
        self.lower_bound_ = _number(m["lower_bound"], "lower_bound")
        self.bic_, self.aic_ = _number(m["bic"], "bic"), _number(m["aic"], "aic")


def _log_density(mixture, rows):
    return log_sum_exp(mixture.weighted_log_prob(mixture.centred(rows)))


def _finite_array(values, shape, name):
    array = np.asarray(values, dtype=np.float64)
    if array.shape != shape or not np.isfinite(array).all():
        raise ValueError(
            f"the mixture's {name} must be {' x '.join(map(str, shape))} finite values"
        )
    return array


def _number(value, name):
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        if value is None or math.isfinite(value):
            return value
    raise ValueError(f"the mixture's {name} must be a finite number or null")


def _count(value):
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 0
