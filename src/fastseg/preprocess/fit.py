"""Fitting the preprocessing in the decode pass: log1p and the mergeable statistics per batch
(``update``), then filling, scaling and PCA on the stored rows (``finish``).

The statistics are the mergeable ones of ``preprocess.stats``; the values they give become the
model's ``Preprocessor``. The arithmetic and its order are those the model files pin down.
"""

import warnings

import numpy as np

from .. import config
from ..errors import DataError, DataWarning
from ..io.store import RowStore, draw_sample
from .pca import component_variance, fit_pca
from .scaling import log1p_in_place, standardize
from .settings import IMPUTING
from .stats import MinMax, Moments, PresentValues


class PreprocessFit:
    """The decode pass's preprocessing: ``update`` each stored batch in place, in row order,
    then ``finish`` the dataset.

    ``log1p`` (feature indices) takes log(1 + x) of those columns first; ``scale`` then maps
    every feature to ``(x - centre) / spread``: mean and standard deviation ("standard"),
    minimum and range ("minmax"), or median and interquartile range ("robust", from a uniform
    sample of ``config.quantile_rows`` rows: exact below it), except the ``unscaled`` ones
    (one-hot columns keep their values). ``pca`` (a number of components, or the share of
    variance to keep) then replaces the rows by their principal components.
    """

    def __init__(self, source, *, scale="none", log1p=(), unscaled=(), pca=None, fill_values=None):
        d = source.n_features
        self.source = source
        self.scale, self.log1p, self.unscaled, self.pca = scale, list(log1p), unscaled, pca
        self.imputing = getattr(source, "missing", None) in IMPUTING
        self.moments = Moments(d)
        self.extremes = MinMax(d) if scale == "minmax" else None
        self.present = PresentValues(d)  # imputing: sums and counts of non-NaN values
        self.fill_values = fill_values  # given: fill with these rather than learn them

    @property
    def changes_rows(self):
        """Whether the decode pass changes rows in place (else an array is used as it is; PCA
        writes a store of its own)."""
        return self.scale != "none" or bool(self.log1p) or self.imputing

    def update(self, batch, w=None):
        """Take one decoded batch (changed in place: log1p) into the statistics."""
        if self.log1p:
            log1p_in_place(batch, self.log1p, self.source.feature_names)
        if self.imputing:  # NaN marks a value to fill; the moments come after the filling
            self.present.update(batch)
        elif self.moments.update(batch, w):
            _report_not_finite(batch, self.source)
        if self.extremes is not None:
            self.extremes.update(batch)

    def finish(self, data, spill_dir, budget):
        """Fill, scale and project the stored rows; returns the dataset (a new one with PCA)."""
        if self.imputing:
            source = self.source
            sample = lambda: draw_sample(data, config.quantile_rows, 0)[0]  # noqa: E731
            values = self.fill_values
            if values is None:
                values = self.present.fill_values(source.missing, sample, source.feature_names)
            _fill_missing(data, values, self.moments)
            data.n_imputed = source.n_imputed
        data.mean, data.var = self.moments.mean, self.moments.var
        data.constant = np.flatnonzero(self.moments.var == 0)
        if self.scale != "none":
            data.scale_mean, data.scale_std = fit_scaling(
                self.scale, data, self.extremes, self.unscaled, self.source.feature_names
            )
            unscaled = list(self.unscaled)
            data.scale_mean[unscaled], data.scale_std[unscaled] = 0.0, 1.0  # one-hot
            _scale_in_place(data.store, data.chunk_rows, data.scale_mean, data.scale_std)
        if self.pca is not None:
            data = _project(data, self.pca, spill_dir, budget)
        return data


def _fill_missing(data, values, moments):
    """Fill the NaN the decode pass left for missing values; the moments come from this pass."""
    data.impute_values = values
    for chunk, w in _writable_chunks(data):
        holes = np.isnan(chunk)
        if holes.any():
            chunk[holes] = np.broadcast_to(values, chunk.shape)[holes]
        moments.update(chunk, w)


def _writable_chunks(data):
    for first, chunk in data.store.chunks(data.chunk_rows, writable=True):
        w = None if data.weights is None else data.weights[first : first + chunk.shape[0]]
        yield chunk, w


def fit_scaling(scale, data, extremes, unscaled=(), names=None, sample=None):
    """(centre, spread) of each feature for ``scale``; a constant feature's spread is 1.

    A feature whose interquartile range is 0 (mostly one value, e.g. zeros) would stay in
    its own units under robust scaling and alone decide the segments: its standard
    deviation is its spread instead, and a ``DataWarning`` says so.
    """
    if scale == "standard":
        centre, spread = data.mean, np.sqrt(data.var)
    elif scale == "minmax":
        low, high = extremes.low, extremes.high
        centre, spread = low.astype(np.float64), (high - low).astype(np.float64)
    else:
        if sample is None:
            rows = draw_sample(data, config.quantile_rows, 0)[0]
        else:
            rows = sample()
        rows = rows.astype(np.float64)
        q25, centre, q75 = np.quantile(rows, [0.25, 0.5, 0.75], axis=0)
        spread = q75 - q25
        _fall_back_to_std(spread, np.sqrt(data.var), unscaled, names)
    spread[spread == 0] = 1.0  # a constant column stays constant, as in scikit-learn
    return np.array(centre, dtype=np.float64), spread  # a copy: callers change it


def _project(data, keep, spill_dir, budget):
    """The dataset with its rows replaced by their first principal components."""
    pca = fit_pca(data, keep)
    p = pca.components.shape[0]
    n, dtype = data.n_rows, data.dtype
    store = RowStore(n, p, dtype, in_memory=n * p * dtype.itemsize <= budget, spill_dir=spill_dir)
    try:
        for _, rows, _ in data.chunks():
            store.append(pca.transform(rows))
    except BaseException:
        store.close()
        raise
    data.store.close()
    data.store, data.pca = store, pca
    data.mean = np.zeros(p)
    data.var = component_variance(pca, n, data.weights is None)  # what tol is relative to
    return data


def _report_not_finite(batch, source):
    bad = int(np.flatnonzero(~np.isfinite(batch).all(axis=0))[0])
    name = source.feature_names[bad] if source.feature_names else f"feature {bad}"
    raise DataError(
        f"column '{name}' holds NaN or infinite values; remove or replace them before clustering"
    )


def _scale_in_place(store, chunk_rows, mean, std):
    for _, rows in store.chunks(chunk_rows, writable=True):
        standardize(rows, mean, std)


def _fall_back_to_std(spread, std, unscaled, names):
    """Robust scaling: the standard deviation as the spread where the quartiles coincide."""
    flat = [j for j in np.flatnonzero((spread == 0) & (std > 0)) if j not in set(unscaled)]
    if not flat:
        return
    spread[flat] = std[flat]
    which = ", ".join(names[j] if names else f"feature {j}" for j in flat)
    warnings.warn(
        f"{which}: the interquartile range is 0 (mostly one value), so robust scaling divides "
        "by the standard deviation instead",
        DataWarning,
        stacklevel=6,
    )
