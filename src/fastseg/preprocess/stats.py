"""Mergeable statistics the preprocessing is fitted from.

Each has ``update(batch)`` (add a batch, in block order, so the result does not depend on
threads or batch size) and ``merge(other)`` (add another part's statistic): a worker can run
``update`` on its fragment and the client merge the parts in a fixed order.
"""

import numpy as np

from .. import config
from ..cluster import kernels
from ..cluster.reduction import FragmentSums
from ..errors import DataError


class Moments:
    """Weighted mean and variance per column in float64, and a check that values are finite.

    Sums are taken around a shift (the first row seen, or one given: the data's first row, so
    that the parts of a Dask fit add up as the local sums do), which keeps E[x²] - E[x]²
    accurate, by a Numba kernel per block, added in the fixed tree of ``cluster.reduction``.
    """

    def __init__(self, n_features, shift=None):
        self._shift = None if shift is None else np.asarray(shift, dtype=np.float64)
        self._sums = FragmentSums(2 * n_features + 2)
        self._ones = np.empty(0)

    def update(self, batch, w=None):
        """Add a batch (the next rows); returns the number of NaN/inf values in it."""
        if self._shift is None:
            self._shift = first_row_shift(batch)
        if w is None:
            if self._ones.shape[0] < batch.shape[0]:
                self._ones = np.ones(batch.shape[0])
            w = self._ones[: batch.shape[0]]
        blocks = np.empty((kernels.n_blocks(batch.shape[0]), self._sums.total.shape[0]))
        kernels.shifted_moments(batch, w, self._shift, blocks)
        for b, row in enumerate(blocks):  # in block order: the result does not depend on threads
            self._sums.add(row, min(config.BLOCK_ROWS, batch.shape[0] - b * config.BLOCK_ROWS))
        return int(blocks[:, -1].sum())

    def merge(self, other):
        """Add another part's moments (taken around its own shift) to these."""
        if other._shift is None:
            return self
        theirs = other._sums.value
        if self._shift is None:
            self._shift = other._shift.copy()
            self._sums.merge(theirs)
            return self
        d = self._shift.shape[0]
        delta = other._shift - self._shift  # x - s1 = (x - s2) + delta
        sums, squares, weight = theirs[:d], theirs[d : 2 * d], theirs[2 * d]
        mine = self._sums.total
        mine[:d] += sums + weight * delta
        mine[d : 2 * d] += squares + 2 * delta * sums + weight * delta * delta
        mine[2 * d :] += theirs[2 * d :]
        return self

    @property
    def weight(self):
        return self._sums.value[-2]

    @property
    def mean(self):
        sums = self._sums.value
        d = (sums.shape[0] - 2) // 2
        if sums[-2] <= 0:
            return np.zeros(d)
        return self._shift + sums[:d] / sums[-2]

    @property
    def var(self):
        sums = self._sums.value
        d = (sums.shape[0] - 2) // 2
        if sums[-2] <= 0:
            return np.zeros(d)
        m = sums[:d] / sums[-2]
        return np.maximum(sums[d : 2 * d] / sums[-2] - m * m, 0.0)


def first_row_shift(rows):
    """What ``Moments`` sums around: the first row, its non-finite values as 0."""
    return np.where(np.isfinite(rows[0]), rows[0], 0).astype(np.float64)


class PresentValues:
    """Per-feature sums and counts of the values that are there (not NaN): the means that
    missing values are filled with."""

    def __init__(self, n_features):
        self._sums = FragmentSums(n_features)
        self.counts = np.zeros(n_features, dtype=np.int64)

    @property
    def sums(self):
        return self._sums.value

    def update(self, batch):
        for s in range(0, batch.shape[0], config.BLOCK_ROWS):  # in block order: the sums do
            block = batch[s : s + config.BLOCK_ROWS]  # not depend on the batch size
            there = ~np.isnan(block)
            self._sums.add(np.where(there, block, 0).sum(axis=0, dtype=np.float64), len(block))
            self.counts += there.sum(axis=0)

    def merge(self, other):
        self._sums.merge(other.sums)
        self.counts += other.counts
        return self

    def fill_values(self, method, sample, feature_names=None):
        """The mean of each feature, or (``method="median"``) its median over the rows that
        ``sample()`` gives (a uniform sample)."""
        if (self.counts == 0).any():
            j = int(np.flatnonzero(self.counts == 0)[0])
            name = feature_names[j] if feature_names else f"feature {j}"
            raise DataError(
                f"column '{name}' has no values at all: there is nothing to fill it with"
            )
        if method == "mean":
            return self.sums / self.counts
        rows = sample().astype(np.float64)
        with np.errstate(all="ignore"):
            median = np.nanmedian(rows, axis=0)  # NaN where the sample missed every value:
        return np.where(np.isnan(median), self.sums / self.counts, median)  # the mean then


class MinMax:
    """Per-feature minimum and maximum (NaN ignored): what minmax scaling needs."""

    def __init__(self, n_features):
        self.low = np.full(n_features, np.inf)
        self.high = np.full(n_features, -np.inf)

    def update(self, batch):
        self.low = np.fmin(self.low, np.nanmin(batch, axis=0))
        self.high = np.fmax(self.high, np.nanmax(batch, axis=0))

    def merge(self, other):
        self.low = np.fmin(self.low, other.low)
        self.high = np.fmax(self.high, other.high)
        return self


class Covariance:
    """Weighted float64 scatter of rows around a given mean (PCA's covariance), summed block
    by block in order, so it does not depend on how the rows were chunked."""

    def __init__(self, mean):
        d = mean.shape[0]
        self.mean = mean
        self._sums = FragmentSums(d * d + 1)  # the scatter, then the weight

    def update(self, rows, w):
        d = self.mean.shape[0]
        for s in range(0, rows.shape[0], config.BLOCK_ROWS):
            centred = rows[s : s + config.BLOCK_ROWS].astype(np.float64) - self.mean
            block = np.empty(d * d + 1)
            block[:-1] = ((centred * w[s : s + config.BLOCK_ROWS, None]).T @ centred).ravel()
            block[-1] = float(w[s : s + config.BLOCK_ROWS].sum())
            self._sums.add(block, centred.shape[0])

    def merge(self, other):
        self._sums.merge(other._sums.value)
        return self

    @property
    def weight(self):
        return float(self._sums.value[-1])

    @property
    def covariance(self):
        d = self.mean.shape[0]
        sums = self._sums.value
        return sums[:-1].reshape(d, d) / sums[-1]


class CategoryLevels:
    """The distinct non-null values of categorical columns (the one-hot levels)."""

    def __init__(self, columns):
        self.values = {c: set() for c in columns}

    def update(self, frame):
        """Add the values of the columns: a polars frame, or {column: polars Series}."""
        for c, seen in self.values.items():
            seen.update(frame[c].drop_nulls().unique().to_list())

    def merge(self, other):
        for c, seen in self.values.items():
            seen.update(other.values[c])
        return self

    def levels(self, describe="the data"):
        """{column: sorted levels}; a column without values, or with more than
        ``config.max_category_levels`` (an id, not a category), is an error."""
        levels = {}
        for c, seen in self.values.items():
            values = sorted(seen)
            if not values:
                raise DataError(f"categorical column '{c}' of {describe} has no values")
            if len(values) > config.max_category_levels:
                raise DataError(
                    f"categorical column '{c}' has {len(values)} distinct values (at most "
                    f"{config.max_category_levels}): is it an id? leave it out of the "
                    "categorical columns"
                )
            levels[c] = values
        return levels
