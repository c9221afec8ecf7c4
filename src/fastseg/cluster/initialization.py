"""Initial centres: greedy k-means++ (as scikit-learn does it), random rows, and k-means||."""

import numpy as np

from ..config import BLOCK_ROWS
from . import kernels


def kmeans_plusplus(X, weights, n_clusters, random_state, n_local_trials=None):
    """Greedy k-means++: each new centre is the best of several D²-sampled candidates.

    X (n, d) float32/float64 rows, weights (n,) float64. Returns float64 centres (k, d).
    Candidates are drawn with probability proportional to weight × squared distance to the
    nearest centre so far; the one that lowers the weighted potential most is kept.
    """
    n, d = X.shape
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    centers = np.empty((n_clusters, d), dtype=np.float64)
    first = random_state.choice(n, p=weights / weights.sum())
    centers[0] = X[first]
    closest = np.empty(n, dtype=np.float64)
    kernels.min_sq_dist_update(X, centers[0], np.full(n, np.inf), closest)
    potential = closest @ weights
    trial = np.empty(n, dtype=np.float64)
    best_trial = np.empty(n, dtype=np.float64)
    cumulative = np.empty(n, dtype=np.float64)  # one buffer: peak memory matters on big samples
    for c in range(1, n_clusters):
        targets = random_state.uniform(size=n_local_trials) * potential
        np.cumsum(np.multiply(weights, closest, out=cumulative), out=cumulative)
        candidates = np.minimum(np.searchsorted(cumulative, targets), n - 1)
        best_pot, best_id = np.inf, candidates[0]
        for cand in candidates:
            kernels.min_sq_dist_update(X, X[cand].astype(np.float64), closest, trial)
            pot = trial @ weights
            if pot < best_pot:  # strict: the first of equal candidates wins, as in scikit-learn
                best_pot, best_id = pot, cand
                trial, best_trial = best_trial, trial
        centers[c] = X[best_id]
        closest, best_trial = best_trial, closest
        potential = best_pot
    return centers


def random_rows(X, weights, n_clusters, random_state):
    """k rows drawn with probability proportional to their weight, distinct where possible.

    With fewer positive-weight rows than k, rows repeat (empty clusters are relocated later),
    as k-means++ does on such data.
    """
    p = weights / weights.sum()
    replace = np.count_nonzero(p) < n_clusters
    ids = random_state.choice(X.shape[0], size=n_clusters, replace=replace, p=p)
    return np.asarray(X[ids], dtype=np.float64)


# ----- k-means|| (Bahmani et al. 2012, "Scalable k-means++") ---------------------------------
# Written as per-chunk steps and in-order merges so that a distributed backend can schedule the
# same steps on its own chunks. Every random number belongs to a row: it comes from a stream
# keyed by (seed, stage, round, first row of the row's block of BLOCK_ROWS rows), so neither the
# chunk size nor the number of threads changes the draw. Chunks start at multiples of BLOCK_ROWS.
N_ROUNDS = 5
OVERSAMPLING = 2.0  # candidates drawn per round, as a multiple of n_clusters
LLOYD_MAX_ITER = 100  # on the candidates: a few thousand weighted points, converges quickly
# Reductions of the candidates to k centres tried, the lowest weighted cost kept: each is a
# k-means++ and a Lloyd on a few thousand points (0.12 s for five at k = 256), and one alone left
# the final fit 0.55-0.91% worse than k-means++ on blobs at k = 256, five 0.12-0.35%.
N_REDUCTIONS = 5

_FIRST, _ROUND, _FILL, _REDUCE = 0, 1, 2, 3  # stages, the second number of every random key


def row_uniforms(key, first_row, m):
    """Uniform numbers in [0, 1) for rows ``first_row`` .. ``first_row + m - 1`` (first_row a
    multiple of BLOCK_ROWS): one stream per block of rows, keyed by ``key + [block's first row]``.
    """
    out = np.empty(m, dtype=np.float64)
    for s in range(0, m, BLOCK_ROWS):
        seq = np.random.SeedSequence([*key, first_row + s])
        out[s : s + BLOCK_ROWS] = np.random.Generator(np.random.PCG64(seq)).random(
            min(BLOCK_ROWS, m - s)
        )
    return out


def _race_step(key, start, rows, rate):
    """One chunk's entry in a weighted draw of one row: (race key, row number, row).

    Each row gets an exponential time of rate ``rate`` (weight, or weight × cost); the
    earliest wins, so a row wins with probability rate / total rate. Rows of rate 0 never win.
    """
    u = row_uniforms(key, start, rows.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        times = np.where(rate > 0, -np.log1p(-u) / rate, np.inf)
    i = int(np.argmin(times))  # the first of equal times
    return times[i], start + i, np.array(rows[i], dtype=np.float64)


def _race_merge(entries):
    """The winner of a weighted draw from the chunks' entries, in row order (None: no row)."""
    best = None
    for entry in entries:
        if entry[0] < np.inf and (best is None or entry[0] < best[0]):
            best = entry
    return None if best is None else best[2]


def _score_step(rows, w, candidates, offset, cost, labels):
    """Update one chunk's cost and nearest-candidate labels with new candidates; returns the
    chunk's per-block weighted costs (merged by concatenation in row order)."""
    block_cost = np.empty(kernels.n_blocks(rows.shape[0]), dtype=np.float64)
    kernels.nearest_candidate_update(rows, w, candidates, offset, cost, labels, block_cost)
    return block_cost


def _draw_step(key, start, rows, w, cost, factor):
    """Rows of one chunk picked as candidates, each independently with probability
    min(1, factor × w × cost), factor = ℓ / φ (float64 copies, in row order)."""
    u = row_uniforms(key, start, rows.shape[0])
    picked = np.flatnonzero(u < factor * (w * cost))
    return np.array(rows[picked], dtype=np.float64)


class _Candidates:
    """The candidates so far and each row's cost and nearest candidate (12 bytes a row).

    The rows' side of k-means|| (``race``, ``add``, ``draw``, ``weights``) over local chunks;
    ``fastseg.distributed.init`` has the same methods over a Dask cluster's fragments.
    """

    def __init__(self, chunks, n_rows, n_features):
        self.chunks = chunks
        self.points = np.empty((0, n_features), dtype=np.float64)
        self.cost = np.full(n_rows, np.inf)
        self.labels = np.zeros(n_rows, dtype=np.int32)

    def race(self, key, by_cost=False):
        """One row drawn with probability proportional to its weight (× its cost), or None."""
        return _race_merge(
            _race_step(
                key, start, rows, w * self.cost[start : start + rows.shape[0]] if by_cost else w
            )
            for start, rows, w in self.chunks()
        )

    def draw(self, key, factor):
        """Every row picked independently with probability min(1, factor × w × cost)."""
        return np.concatenate(
            [
                _draw_step(key, start, rows, w, self.cost[start : start + rows.shape[0]], factor)
                for start, rows, w in self.chunks()
            ]
        )

    def add(self, new):
        """Append candidates and score only them; returns φ, the weighted cost."""
        offset = self.points.shape[0]
        self.points = np.concatenate([self.points, new])
        parts = []
        for start, rows, w in self.chunks():
            stop = start + rows.shape[0]
            parts.append(
                _score_step(rows, w, new, offset, self.cost[start:stop], self.labels[start:stop])
            )
        return float(np.sum(np.concatenate(parts)))

    def weights(self):
        """The (sample-weighted) number of rows nearest to each candidate: added row after
        row within a fragment, fragments' totals in order (the tree of ``reduction``)."""
        from .step import waves

        totals = np.zeros(self.points.shape[0], dtype=np.float64)
        part = np.zeros_like(totals)
        for start, rows, w in self.chunks():
            labels = self.labels[start : start + rows.shape[0]]
            for s, e, fragment_end in waves(start, rows.shape[0], rows.shape[0]):
                kernels.add_weight_by_label(labels[s:e], w[s:e], part)
                if fragment_end:
                    totals += part
                    part[:] = 0.0
        return totals + part


def kmeans_parallel_candidates(
    chunks,
    n_rows,
    n_features,
    n_clusters,
    seed,
    n_rounds=N_ROUNDS,
    oversampling=OVERSAMPLING,
    rows=None,
):
    """The candidates of k-means|| and their weights, before the reduction to k centres.

    ``chunks()`` yields (first row, rows, weights) over all rows, first rows multiples of
    BLOCK_ROWS. A first candidate is drawn with probability proportional to the weight; then
    each round picks every row independently with probability min(1, ℓ w d² / φ), ℓ =
    ``oversampling × n_clusters``, d² its squared distance to the nearest candidate (kept
    between rounds, so a round scores only the new candidates), φ the weighted sum of d².
    With fewer than ``n_clusters`` distinct candidates after ``n_rounds`` rounds, k-means++
    draws (one row at a time, with probability proportional to w d²) fill up the set, while
    rows at a positive distance remain. A candidate's weight is the total sample weight of
    the rows nearest to it (the lowest-numbered candidate on ties), so a candidate repeating
    an earlier one weighs 0. ``rows``: the rows' side on a Dask cluster (default: the local
    ``chunks``).
    """
    cands = rows if rows is not None else _Candidates(chunks, n_rows, n_features)
    first = cands.race([seed, _FIRST, 0])
    phi = cands.add(first[None, :])
    ell = oversampling * n_clusters
    for r in range(1, n_rounds + 1):
        if not phi > 0.0:  # every row is a candidate already
            break
        phi = cands.add(cands.draw([seed, _ROUND, r], ell / phi))
    distinct = np.unique(cands.points, axis=0).shape[0]
    for j in range(n_clusters - distinct):
        extra = cands.race([seed, _FILL, j], by_cost=True)
        if extra is None:  # fewer than n_clusters distinct rows of positive weight
            break
        cands.add(extra[None, :])
    return cands.points, cands.weights()


def weighted_lloyd(X, weights, centers, max_iter=LLOYD_MAX_ITER):
    """Weighted Lloyd on a few points in memory, until no label changes (centers INOUT).

    A centre that loses all its points stays where it is.
    """
    k, d = centers.shape
    labels = np.full(X.shape[0], -1, dtype=np.int32)
    new_labels = np.empty_like(labels)
    dist = np.empty(X.shape[0], dtype=np.float64)
    for _ in range(max_iter):
        kernels.assign(X, centers, new_labels, dist)
        if np.array_equal(labels, new_labels):
            break
        labels, new_labels = new_labels, labels
        mass = np.bincount(labels, weights=weights, minlength=k)
        full = mass > 0
        for j in range(d):
            sums = np.bincount(labels, weights=weights * X[:, j], minlength=k)
            centers[full, j] = sums[full] / mass[full]
    return centers


def kmeans_parallel(
    chunks,
    n_rows,
    n_features,
    n_clusters,
    random_state,
    n_rounds=N_ROUNDS,
    oversampling=OVERSAMPLING,
    rows=None,
):
    """k-means|| initial centres (Bahmani et al. 2012) over all rows, chunk by chunk (or,
    with ``rows``, fragment by fragment on a Dask cluster).

    The candidates (``kmeans_parallel_candidates``) of positive weight are reduced to
    ``n_clusters`` centres by weighted k-means++ followed by weighted Lloyd, the best (lowest
    weighted cost) of ``N_REDUCTIONS``. One number is
    drawn from ``random_state``; everything else depends on it alone, not on the chunk size
    or the number of threads. With fewer distinct candidates than clusters (the data has
    fewer distinct rows of positive weight), those are the centres, repeated in turn to make
    up ``n_clusters`` (empty clusters are relocated later, as with k-means++ on such data).
    Returns float64 centres (k, d).
    """
    seed = int(random_state.randint(np.iinfo(np.int32).max))
    points, weights = kmeans_parallel_candidates(
        chunks, n_rows, n_features, n_clusters, seed, n_rounds, oversampling, rows
    )
    keep = weights > 0
    points, weights = points[keep], weights[keep]
    if points.shape[0] <= n_clusters:
        return points[np.arange(n_clusters) % points.shape[0]].copy()
    reduce_state = np.random.RandomState(np.random.SeedSequence([seed, _REDUCE]).generate_state(4))
    best, best_cost = None, np.inf
    for _ in range(N_REDUCTIONS):
        centers = kmeans_plusplus(points, weights, n_clusters, reduce_state)
        centers = weighted_lloyd(points, weights, centers)
        cost = _weighted_cost(points, weights, centers)
        if cost < best_cost:  # strict: the first of equal reductions
            best, best_cost = centers, cost
    return best


def _weighted_cost(points, weights, centers):
    labels = np.empty(points.shape[0], dtype=np.int32)
    dist = np.empty(points.shape[0], dtype=np.float64)
    kernels.assign(points, centers, labels, dist)
    return float(dist @ weights)
