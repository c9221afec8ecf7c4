"""Slow, obviously-correct NumPy references for the kernels in ``fastseg.cluster.kernels``
(and for Lloyd).

Everything here works in float64 on plain NumPy arrays, favours clarity over speed, and returns
new arrays instead of writing into buffers. The tests compare the Numba kernels against these.

Conventions copied from the kernels (and documented there):

* squared distances are direct sums of squared differences in float64;
* the nearest centre of a row is the lowest index among the centres at minimal distance;
* rows are cut into reduction blocks of ``BLOCK_ROWS`` rows starting at row 0.
"""

import numpy as np

from fastseg.config import BLOCK_ROWS


# ----- distances -----------------------------------------------------------------------------
def sq_distances(X, centers):
    """(n, k) squared Euclidean distances, computed as sums of squared differences in float64."""
    X = np.asarray(X, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    diff = X[:, None, :] - centers[None, :, :]
    return (diff * diff).sum(axis=2)


def nearest(X, centers):
    """Labels (lowest index on ties: np.argmin returns the first minimum) and squared distances."""
    d2 = sq_distances(X, centers)
    labels = np.argmin(d2, axis=1)
    return labels, d2[np.arange(d2.shape[0]), labels]


def block_ranges(n_rows, block_rows=BLOCK_ROWS):
    """(start, stop) of every reduction block covering n_rows rows."""
    return [(s, min(n_rows, s + block_rows)) for s in range(0, n_rows, block_rows)]


# ----- kernel references ---------------------------------------------------------------------
def assign_accumulate(X, weights, centers, labels_in):
    """Reference for ``kernels.assign_accumulate``.

    Returns (labels, block_sums (b, k, d), block_weights (b, k), block_stats (b, 2)), where
    block_stats[b] = (weighted inertia of block b, number of rows of block b whose label changed
    compared with ``labels_in``).
    """
    X = np.asarray(X, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    k, d = np.shape(centers)
    labels, dist = nearest(X, centers)
    labels_in = np.asarray(labels_in)
    blocks = block_ranges(X.shape[0])
    block_sums = np.zeros((len(blocks), k, d))
    block_weights = np.zeros((len(blocks), k))
    block_stats = np.zeros((len(blocks), 2))
    for b, (start, stop) in enumerate(blocks):
        for c in range(k):
            mine = np.flatnonzero(labels[start:stop] == c) + start
            block_weights[b, c] = w[mine].sum()
            block_sums[b, c] = (w[mine, None] * X[mine]).sum(axis=0)
        block_stats[b, 0] = (w[start:stop] * dist[start:stop]).sum()
        block_stats[b, 1] = np.count_nonzero(labels[start:stop] != labels_in[start:stop])
    return labels, block_sums, block_weights, block_stats


def reduce_blocks(block_sums, block_weights, block_stats, n_used, sums, weight_sums, stats):
    """Reference for ``kernels.reduce_blocks``: returns the new (sums, weight_sums, stats)."""
    sums = np.array(sums, dtype=np.float64, copy=True)
    weight_sums = np.array(weight_sums, dtype=np.float64, copy=True)
    stats = np.array(stats, dtype=np.float64, copy=True)
    for b in range(n_used):  # in block order, as the kernel does
        sums = sums + block_sums[b]
        weight_sums = weight_sums + block_weights[b]
        stats = stats + block_stats[b]
    return sums, weight_sums, stats


def assign(X, centers):
    """Reference for ``kernels.assign``: (labels, squared distance to the nearest centre)."""
    return nearest(X, centers)


def distances_to_labels(X, centers, labels):
    """Reference for ``kernels.distances_to_labels``: squared distance to the labelled centre."""
    d2 = sq_distances(X, centers)
    labels = np.asarray(labels)
    return d2[np.arange(d2.shape[0]), labels]


def all_distances(X, centers):
    """Reference for ``kernels.all_distances``: (n, k) Euclidean distances."""
    return np.sqrt(sq_distances(X, centers))


def min_sq_dist_update(X, point, closest):
    """Reference for ``kernels.min_sq_dist_update``: min(closest, |X - point|²) per row."""
    d2 = sq_distances(X, np.asarray(point, dtype=np.float64)[None, :])[:, 0]
    return np.minimum(np.asarray(closest, dtype=np.float64), d2)


def minibatch_update(centers, weight_sums, sums, batch_weights):
    """Reference for ``kernels.minibatch_update``: returns new (centers, weight_sums).

    A centre with batch weight > 0 moves to the weighted mean of everything it has seen:
    (old_centre * old_weight + batch_sum) / (old_weight + batch_weight). Others stay.
    """
    centers = np.array(centers, dtype=np.float64, copy=True)
    weight_sums = np.array(weight_sums, dtype=np.float64, copy=True)
    for c in range(centers.shape[0]):
        wb = batch_weights[c]
        if wb > 0:
            total = weight_sums[c] + wb
            centers[c] = (centers[c] * weight_sums[c] + sums[c]) / total
            weight_sums[c] = total
    return centers, weight_sums


def shifted_moments(X, weights, shift):
    """Reference for ``kernels.shifted_moments``: (b, 2d + 2) per-block moments.

    Per block: the d sums of w·(x - shift), the d sums of w·(x - shift)², the total weight of the
    block's rows, and the number of NaN/inf values. A non-finite value is counted and left out of
    its column's sums (its row's weight still counts).
    """
    X = np.asarray(X, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    shift = np.asarray(shift, dtype=np.float64)
    d = X.shape[1]
    blocks = block_ranges(X.shape[0])
    out = np.zeros((len(blocks), 2 * d + 2))
    for b, (start, stop) in enumerate(blocks):
        x = X[start:stop]
        finite = np.isfinite(x)
        diff = np.where(finite, x - shift, 0.0)
        wb = w[start:stop, None]
        out[b, :d] = (wb * diff).sum(axis=0)
        out[b, d : 2 * d] = (wb * diff * diff).sum(axis=0)
        out[b, 2 * d] = w[start:stop].sum()
        out[b, 2 * d + 1] = np.count_nonzero(~finite)
    return out


def weighted_mean_var(X, weights=None):
    """Weighted mean and (population) variance per column, in float64."""
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(X.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    mean = (w @ X) / w.sum()
    return mean, (w @ (X - mean) ** 2) / w.sum()


# ----- k-means++ -----------------------------------------------------------------------------
def potential(X, centers, weights=None):
    """k-means potential: weighted sum of squared distances to the nearest centre."""
    _, dist = nearest(X, centers)
    w = np.ones(len(dist)) if weights is None else np.asarray(weights, dtype=np.float64)
    return float(w @ dist)


def greedy_kmeans_plusplus(X, weights, n_clusters, random_state, n_local_trials=None):
    """Greedy k-means++ consuming the random stream as scikit-learn's ``_kmeans_plusplus`` does.

    First centre: ``choice(n, p=w / w.sum())``. Each next centre: ``n_local_trials`` uniform
    draws times the potential, mapped through the cumulative weighted D² to candidate rows; the
    candidate giving the lowest potential (first one on ties) is kept. Returns (centres, indices).
    """
    X = np.asarray(X)
    w = np.asarray(weights, dtype=np.float64)
    n = X.shape[0]
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    first = random_state.choice(n, p=w / w.sum())
    ids = [first]
    closest = sq_distances(X, X[[first]])[:, 0]
    pot = float(closest @ w)
    for _ in range(1, n_clusters):
        targets = random_state.uniform(size=n_local_trials) * pot
        cand = np.minimum(np.searchsorted(np.cumsum(w * closest), targets), n - 1)
        trial = np.minimum(closest[None, :], sq_distances(X[cand], X))  # (trials, n)
        pots = trial @ w
        best = int(np.argmin(pots))
        ids.append(cand[best])
        closest = trial[best]
        pot = float(pots[best])
    return np.asarray(X[ids], dtype=np.float64), np.asarray(ids)


# ----- Lloyd ---------------------------------------------------------------------------------
def relocate_empty_clusters(X, w, centers, labels, sums, weight_sums):
    """scikit-learn's empty-cluster rule, with a deterministic order.

    The rows farthest from their (old) centre move, the farthest to the first empty cluster, the
    next to the second, ...; ties in distance go to the lower row index. Each moved row leaves its
    old cluster's sums (its label is not changed, as in scikit-learn).
    """
    empty = np.flatnonzero(weight_sums == 0)
    if empty.size == 0:
        return
    dist = distances_to_labels(X, centers, labels)
    order = np.lexsort((np.arange(len(dist)), -dist))
    for cluster, row in zip(empty, order[: empty.size], strict=False):
        old = labels[row]
        sums[old] -= X[row] * w[row]
        weight_sums[old] -= w[row]
        sums[cluster] = X[row] * w[row]
        weight_sums[cluster] = w[row]


def lloyd(X, init, max_iter=300, tol=0.0, sample_weight=None):
    """Plain Lloyd iterations as scikit-learn's ``_kmeans_single_lloyd`` runs them.

    ``tol`` is absolute (a bound on the summed squared centre shift). Returns
    (centres, labels, inertia, n_iter). Stops on strict convergence (labels equal to the previous
    iteration's) or when the shift is at most ``tol``; after a non-strict stop the labels are
    recomputed on the final centres.
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    centers = np.array(init, dtype=np.float64, copy=True)
    k = centers.shape[0]
    labels_old = np.full(n, -1)
    strict = False
    n_iter = 0
    for it in range(max_iter):
        n_iter = it + 1
        labels, _ = nearest(X, centers)
        sums = np.zeros_like(centers)
        weight_sums = np.zeros(k)
        for c in range(k):
            mine = labels == c
            sums[c] = (w[mine, None] * X[mine]).sum(axis=0)
            weight_sums[c] = w[mine].sum()
        relocate_empty_clusters(X, w, centers, labels, sums, weight_sums)
        safe = np.where(weight_sums > 0, weight_sums, 1.0)
        new_centers = np.where(weight_sums[:, None] > 0, sums / safe[:, None], centers)
        if np.array_equal(labels, labels_old):
            strict = True
            centers = new_centers
            break
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if shift <= tol:
            break
        labels_old = labels
    if not strict:
        labels, _ = nearest(X, centers)
    dist = distances_to_labels(X, centers, labels)
    return centers, labels, float(w @ dist), n_iter


# ----- k-means|| -------------------------------------------------------------------------------
def candidate_weights(X, weights, candidates):
    """Reference for the k-means|| weighting step: the total sample weight of the rows nearest
    to each candidate (lowest index on ties), and each row's squared distance to it."""
    labels, dist = nearest(X, candidates)
    w = np.asarray(weights, dtype=np.float64)
    totals = np.zeros(np.shape(candidates)[0])
    for i, c in enumerate(labels):
        totals[c] += w[i]
    return totals, dist


def assign_records(
    X, log1p, centre, spread, pca_mean, components, centers, scaled_centers, group, fill
):
    """Reference for ``kernels.assign_records``: returns (best, distance, runner-up,
    distance, the positive parts' groups largest first, their shares) per row, and the
    per-group parts of the squared-distance gap."""
    X = np.asarray(X, dtype=np.float64)
    z = np.where(log1p, np.log1p(X), X)
    z = np.where(np.isnan(z), fill, z)  # filled after log1p, as the fit fills
    z = (z - centre) / spread
    y = (z - pca_mean) @ components.T if len(components) else z
    d2 = ((y[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    order = np.argsort(d2, axis=1, kind="stable")  # ties: the lower centre first
    found = []
    for i, row in enumerate(order):
        best, runner = row[0], (row[1] if len(row) > 1 else -1)
        parts = np.zeros(int(group.max()) + 1)
        if runner >= 0:
            gap = (z[i] - scaled_centers[runner]) ** 2 - (z[i] - scaled_centers[best]) ** 2
            np.add.at(parts, group, gap)
        positive = [g for g in np.argsort(-parts, kind="stable") if parts[g] > 0]
        pull = parts[parts > 0].sum()
        found.append(
            (
                best,
                np.sqrt(d2[i, best]),
                runner,
                np.sqrt(d2[i, runner]) if runner >= 0 else np.nan,
                positive,
                [parts[g] / pull for g in positive],
                parts,
            )
        )
    return found
