"""Initial centres: greedy k-means++ (as scikit-learn does it) and random rows."""

import numpy as np

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
