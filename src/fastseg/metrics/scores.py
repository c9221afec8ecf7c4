"""How good a segmentation is: scikit-learn's silhouette, Davies-Bouldin and Calinski-Harabasz
scores on Numba kernels, and ``score_model``, which scores a fitted model over data of any size.

The three functions take scikit-learn's arguments and give its values on the same data and
labels (computed in float64, direct differences). ``score_model`` streams the data twice:
Davies-Bouldin and Calinski-Harabasz come out exact, and the silhouette, which is O(n²), is
taken on a sample stratified by segment so small segments count.
"""

import numpy as np
from numba import njit, prange

from ..cluster.engine import random_stream, thread_limit
from ..cluster.kernels import n_blocks
from ..cluster.numba_cache import enable_cache
from ..config import BLOCK_ROWS, FASTMATH_ORDERED
from ..errors import DataError
from ..io.store import sample_positions

CACHE = enable_cache(__file__)  # False when no folder is writable: compile on each run


# ----- kernels ------------------------------------------------------------------------------
@njit(parallel=True, fastmath=FASTMATH_ORDERED, cache=CACHE)
def label_sums(X, labels, block_sums, block_counts):
    """Per block (OUT): the feature sums and the row count of each label."""
    n, d = X.shape
    for b in prange(n_blocks(n)):
        block_sums[b] = 0.0
        block_counts[b] = 0.0
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            c = labels[i]
            block_counts[b, c] += 1.0
            for j in range(d):
                block_sums[b, c, j] += np.float64(X[i, j])


@njit(parallel=True, fastmath=FASTMATH_ORDERED, cache=CACHE)
def label_dispersion(X, labels, centroids, block_out):
    """Per block (OUT) and label: the sum of squared distances and of distances to its centroid."""
    n, d = X.shape
    for b in prange(n_blocks(n)):
        block_out[b] = 0.0
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            c = labels[i]
            s = 0.0
            for j in range(d):
                diff = np.float64(X[i, j]) - centroids[c, j]
                s += diff * diff
            block_out[b, c, 0] += s
            block_out[b, c, 1] += np.sqrt(s)


@njit(parallel=True, fastmath=FASTMATH_ORDERED, cache=CACHE)
def silhouette_means(X, labels, counts, own, nearest_other):
    """Per row (OUT): mean distance to the other rows of its label, and the smallest mean
    distance to the rows of another label. O(n² d): run it on a sample."""
    n, d = X.shape
    k = counts.shape[0]
    for i in prange(n):
        totals = np.zeros(k)
        for m in range(n):
            s = 0.0
            for j in range(d):
                diff = np.float64(X[i, j]) - np.float64(X[m, j])
                s += diff * diff
            totals[labels[m]] += np.sqrt(s)
        c = labels[i]
        own[i] = totals[c] / (counts[c] - 1) if counts[c] > 1 else np.nan
        best = np.inf
        for other in range(k):
            if other != c and counts[other] > 0:
                best = min(best, totals[other] / counts[other])
        nearest_other[i] = best


# ----- scikit-learn's functions -------------------------------------------------------------
def silhouette_score(X, labels, *, metric="euclidean", sample_size=None, random_state=None):
    """Mean silhouette coefficient, as ``sklearn.metrics.silhouette_score`` (euclidean only).

    With ``sample_size``, it is taken on the rows scikit-learn would draw for the same
    ``random_state`` (a permutation's first ``sample_size``), so the values match.
    """
    if metric != "euclidean":
        raise DataError(f"metric={metric!r}: fastseg's silhouette is euclidean only")
    X, codes, _ = _checked(X, labels)
    if sample_size is not None:
        keep = random_stream(random_state).permutation(X.shape[0])[:sample_size]
        X, codes = X[keep], codes[keep]  # labels absent from the sample drop out, as there
    return float(np.mean(silhouette_samples(X, codes)))


def silhouette_samples(X, labels):
    """Silhouette coefficient of every row (0 for a row alone in its label), as scikit-learn."""
    X, codes, counts = _checked(X, labels)
    own, other = np.empty(X.shape[0]), np.empty(X.shape[0])
    with thread_limit(None):
        silhouette_means(X, codes, counts.astype(np.float64), own, other)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = (other - own) / np.maximum(own, other)
    return np.nan_to_num(values)


def davies_bouldin_score(X, labels):
    """Davies-Bouldin index (lower is better), as ``sklearn.metrics.davies_bouldin_score``."""
    return _label_stats(X, labels).davies_bouldin()


def calinski_harabasz_score(X, labels):
    """Calinski-Harabasz index (higher is better), as scikit-learn's."""
    return _label_stats(X, labels).calinski_harabasz()


def _label_stats(X, labels):
    X, codes, counts = _checked(X, labels)
    stats = LabelStats(X.shape[1], counts.shape[0])
    with thread_limit(None):
        stats.add_sums(X, codes)
        stats.add_dispersion(X, codes)
    return stats


# ----- a fitted model on data of any size ----------------------------------------------------
def score_model(model, data, *, columns=None, sample_size=10_000, random_state=None):
    """Score a fitted model on data of any size (array, frame, Parquet): two streaming passes.

    Rows are labelled by the model and scored in the space it clusters in (its scaling
    replayed); rows with a missing feature are filled or left out, as the fit did.
    Davies-Bouldin and Calinski-Harabasz are exact. The silhouette is estimated on a sample
    stratified by segment: each segment gets ``sample_size // (2 k)`` rows or all it has, more
    in proportion to its size, and the segments' mean silhouettes are weighted by their
    shares, so a small segment is measured and a large one is not over-counted.

    Returns a dict: ``n_rows``, ``inertia`` (of the model's centres), ``silhouette``,
    ``davies_bouldin``, ``calinski_harabasz``, ``sample_sizes`` (sampled rows per segment).
    """
    model._check_fitted()
    inertia = 0.0

    def chunks(pass_no):
        nonlocal inertia
        # rows with a missing feature: filled as the fit filled them, else left out as it did
        for batch in model.iter_assign(data, columns=columns, nulls="skip"):
            codes, dist = batch.assigned()
            if pass_no == 0:
                inertia += float(dist.sum())
            yield batch.scaled, codes

    with thread_limit(model.n_threads):
        scores = score_chunks(
            chunks, model.n_clusters, model.cluster_centers_.shape[1], sample_size, random_state
        )
    return {"n_rows": scores.pop("n_rows"), "inertia": inertia, **scores}


def score_chunks(chunks, k, n_features, sample_size=10_000, random_state=None):
    """The scores of a labelled dataset seen twice through ``chunks(pass_no)``, which must
    yield the same (rows, labels in 0..k-1) in the same order on both passes.

    Returns ``n_rows``, ``silhouette`` (stratified sample), ``davies_bouldin``,
    ``calinski_harabasz`` and ``sample_sizes``; see ``score_model``.
    """
    stats = LabelStats(n_features, k)
    rs = random_stream(random_state)
    for rows, codes in chunks(0):
        stats.add_sums(rows, codes)
    counts = stats.counts.astype(np.int64)
    _check_number_of_labels(int((counts > 0).sum()), int(counts.sum()))
    quotas = stratified_quotas(counts, sample_size)
    chosen = [
        sample_positions(c, q, rs.randint(2**31 - 1)) for c, q in zip(counts, quotas, strict=True)
    ]
    seen = np.zeros(k, dtype=np.int64)  # rows of each segment so far: their ranks
    picked = [[] for _ in range(k)]
    for rows, codes in chunks(1):
        stats.add_dispersion(rows, codes)
        for c in range(k):
            at = np.flatnonzero(codes == c)
            rank = seen[c] + np.arange(at.size)
            picked[c].append(rows[at[np.isin(rank, chosen[c], assume_unique=True)]])
            seen[c] += at.size
    if not np.array_equal(seen, counts):
        raise DataError("the data changed between the two passes: run again")
    sample = np.concatenate([np.concatenate(p) for p in picked]).astype(np.float64)
    sample_codes = np.repeat(np.arange(k, dtype=np.int32), quotas)
    return {
        "n_rows": int(counts.sum()),
        "silhouette": _stratified_silhouette(sample, sample_codes, counts),
        "davies_bouldin": stats.davies_bouldin(),
        "calinski_harabasz": stats.calinski_harabasz(),
        "sample_sizes": quotas.tolist(),
    }


def stratified_quotas(counts, sample_size):
    """Rows to sample per segment: ``sample_size // (2 k)`` at least (or all the segment
    has), and ``sample_size`` shared in proportion to the segments' sizes."""
    counts = np.asarray(counts, dtype=np.int64)
    floor = max(2, sample_size // (2 * counts.shape[0]))
    share = np.round(sample_size * counts / max(int(counts.sum()), 1)).astype(np.int64)
    return np.minimum(counts, np.maximum(share, floor))


def _stratified_silhouette(sample, codes, counts):
    """Mean silhouette of the population from a stratified sample: per-segment means of the
    sample's coefficients, weighted by the segments' shares of all rows."""
    sample_counts = np.bincount(codes, minlength=counts.shape[0]).astype(np.float64)
    own, other = np.empty(sample.shape[0]), np.empty(sample.shape[0])
    silhouette_means(sample, codes, sample_counts, own, other)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.nan_to_num((other - own) / np.maximum(own, other))
    present = sample_counts > 0
    means = np.bincount(codes, weights=values, minlength=counts.shape[0])[present]
    means /= sample_counts[present]
    shares = counts[present] / counts[present].sum()
    return float(shares @ means)


def _checked(X, labels):
    """X as a finite 2-D float array, labels as codes 0..k-1 with their counts (k checked)."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(f"X must be 2-D (rows, features), got {X.ndim}-D")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    X = np.ascontiguousarray(X)
    if not np.isfinite(X).all():
        raise DataError("X holds NaN or infinite values; remove or replace them first")
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != X.shape[0]:
        raise DataError(f"{labels.shape[0]} labels for {X.shape[0]} rows")
    _, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    _check_number_of_labels(counts.shape[0], X.shape[0])
    return X, codes.astype(np.int32), counts


def _check_number_of_labels(n_labels, n_rows):
    if not 1 < n_labels < n_rows:
        raise DataError(
            f"Number of labels is {n_labels}. Valid values are 2 to n_samples - 1 (inclusive)"
        )


class LabelStats:
    """Per-label sums, counts and dispersions, added chunk by chunk (in block order, so the
    totals do not depend on the chunking) and turned into the two centroid-based scores."""

    def __init__(self, n_features, n_labels):
        self.sums = np.zeros((n_labels, n_features))
        self.counts = np.zeros(n_labels)
        self.sq_dist = np.zeros(n_labels)  # sum of squared distances to the centroid
        self.dist = np.zeros(n_labels)  # sum of distances to the centroid

    @property
    def centroids(self):
        return self.sums / np.maximum(self.counts, 1.0)[:, None]

    def add_sums(self, X, codes):
        """First pass: a chunk's contribution to the label sums and counts."""
        nb = n_blocks(X.shape[0])
        block_sums = np.empty((nb, *self.sums.shape))
        block_counts = np.empty((nb, self.counts.shape[0]))
        label_sums(X, codes, block_sums, block_counts)
        for b in range(nb):
            self.sums += block_sums[b]
            self.counts += block_counts[b]

    def add_dispersion(self, X, codes):
        """Second pass: a chunk's distances to the centroids of the first pass."""
        nb = n_blocks(X.shape[0])
        block_out = np.empty((nb, self.counts.shape[0], 2))
        label_dispersion(X, codes, self.centroids, block_out)
        for b in range(nb):
            self.sq_dist += block_out[b, :, 0]
            self.dist += block_out[b, :, 1]

    def calinski_harabasz(self):
        present = self.counts > 0
        n, k = self.counts.sum(), int(present.sum())
        _check_number_of_labels(k, int(n))
        mean = self.sums.sum(axis=0) / n
        between = float((self.counts * ((self.centroids - mean) ** 2).sum(axis=1)).sum())
        within = float(self.sq_dist.sum())
        return 1.0 if within == 0.0 else between * (n - k) / (within * (k - 1.0))

    def davies_bouldin(self):
        present = self.counts > 0
        _check_number_of_labels(int(present.sum()), int(self.counts.sum()))
        centroids = self.centroids[present]
        intra = self.dist[present] / self.counts[present]
        gaps = np.sqrt(((centroids[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2))
        if np.allclose(intra, 0.0) or np.allclose(gaps, 0.0):
            return 0.0
        gaps[gaps == 0] = np.inf
        return float(np.mean(np.max((intra[:, None] + intra[None, :]) / gaps, axis=1)))


def adjusted_rand_score(labels_a, labels_b):
    """Agreement of two labellings of the same rows, corrected for chance (Hubert and Arabie
    1985; scikit-learn's ``adjusted_rand_score``, without importing scikit-learn): 1 the same
    partition, about 0 as good as random. From the contingency table of the two labellings."""
    a, b = np.asarray(labels_a), np.asarray(labels_b)
    if a.shape != b.shape or a.ndim != 1:
        raise DataError("adjusted_rand_score needs two labellings of the same rows")
    n = a.shape[0]
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    table = np.bincount(a * (b.max(initial=0) + 1) + b).astype(np.float64)

    def pairs(counts):
        return float((counts * (counts - 1)).sum() / 2)

    together = pairs(table)
    rows = pairs(np.bincount(a).astype(np.float64))
    columns = pairs(np.bincount(b).astype(np.float64))
    expected = rows * columns / (n * (n - 1) / 2) if n > 1 else 0.0
    largest = (rows + columns) / 2
    if largest == expected:  # one cluster each, or every row its own: a perfect match
        return 1.0
    return (together - expected) / (largest - expected)
