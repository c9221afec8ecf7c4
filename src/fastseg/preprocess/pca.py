"""Principal components of the decoded, scaled rows: fitted from a covariance accumulated in
float64 in one pass, applied by ``transform`` (fit and predict) and undone by ``inverse``."""

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .stats import Covariance


@dataclass
class PCA:
    """Principal components of the scaled rows: ``(x - mean) @ components.T``."""

    mean: np.ndarray  # (d,)
    components: np.ndarray  # (p, d), rows of unit length, largest variance first
    explained_variance: np.ndarray  # (p,), with scikit-learn's n - 1 (unweighted rows)
    explained_variance_ratio: np.ndarray  # (p,)

    def transform(self, rows):
        return ((rows - self.mean) @ self.components.T).astype(rows.dtype, copy=False)

    def inverse(self, points):
        return points @ self.components + self.mean


def fit_pca(data, keep):
    """PCA of the stored rows from their float64 covariance, accumulated in one pass.

    ``keep``: a number of components, or a share of the variance in (0, 1). Components are
    the covariance's eigenvectors, signed as scikit-learn signs them (largest absolute
    entry positive), so they equal ``sklearn.decomposition.PCA``'s.
    """
    scatter = Covariance(scaled_mean(data))
    for _, rows, w in data.chunks():
        scatter.update(rows, w)
    return pca_from_scatter(scatter, data.n_rows, data.weights is None, keep)


def component_variance(pca, n_rows, unweighted):
    """The stored components' population variance (what ``tol`` is relative to): scikit-learn's
    n - 1 undone for unweighted rows."""
    var = pca.explained_variance.copy()
    if unweighted and n_rows > 1:
        var *= (n_rows - 1) / n_rows
    return var


def scaled_mean(data):
    """The mean of the stored (scaled) rows: what PCA centres them on."""
    return data.mean if data.scale_std is None else (data.mean - data.scale_mean) / data.scale_std


def pca_from_scatter(scatter, n_rows, unweighted, keep):
    """The PCA a ``Covariance`` of ``n_rows`` rows gives (merged from fragments on Dask)."""
    d = scatter.mean.shape[0]
    variance, vectors = np.linalg.eigh(scatter.covariance)
    order = np.argsort(variance)[::-1]
    variance, components = np.maximum(variance[order], 0.0), vectors[:, order].T
    biggest = np.argmax(np.abs(components), axis=1)
    components *= np.sign(components[np.arange(d), biggest])[:, None]
    ratio = variance / max(float(variance.sum()), 1e-300)
    if unweighted and n_rows > 1:  # reported as scikit-learn does: n - 1
        variance = variance * n_rows / (n_rows - 1)
    if isinstance(keep, float) and 0 < keep <= 1:  # a share (1.0: all the variance)
        p = int(np.searchsorted(np.cumsum(ratio), keep - 1e-12) + 1)
    elif isinstance(keep, (int, np.integer)) and 1 <= keep <= d:
        p = int(keep)
    else:
        raise DataError(
            f"pca={keep!r}: give a number of components from 1 to {d}, or a share "
            "of the variance between 0 and 1"
        )
    return PCA(scatter.mean, components[:p], variance[:p], ratio[:p])
