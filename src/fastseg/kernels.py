"""Numba kernels: nearest-centre assignment, per-block sums, distances, k-means++ D² updates.

Prior validation assumed: arrays are 2-D, finite, of matching shapes. X may be float32 or float64
and read-only (Polars buffers and memmaps are); centres and every accumulator are float64.
Distances are direct squared differences, never ``|x|² - 2x·c + |c|²``, which loses precision.

Parallel kernels split rows into blocks of ``config.BLOCK_ROWS`` starting at fixed row positions;
each block writes its own slot of an output buffer, and blocks are reduced in order afterwards, so
the answer is the same whatever the number of threads.
"""

import numpy as np
from numba import njit, prange

from .config import BLOCK_ROWS, FASTMATH


@njit(cache=True)
def n_blocks(n_rows):
    """Number of reduction blocks covering ``n_rows`` rows."""
    return (n_rows + BLOCK_ROWS - 1) // BLOCK_ROWS


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _nearest(X, i, centers):
    """Nearest centre to row i (ties: lowest index), its squared distance, and the runner-up's.

    Every kernel that chooses a label calls this one function, so they all round alike.
    """
    k, d = centers.shape
    best = np.inf
    runner_up = np.inf
    best_c = 0
    for c in range(k):
        s = 0.0
        for j in range(d):
            diff = np.float64(X[i, j]) - centers[c, j]
            s += diff * diff
        # branch-free, so LLVM keeps the loop vectorised
        runner_up = min(runner_up, max(s, best))
        best_c = c if s < best else best_c
        best = min(s, best)
    return best_c, best, runner_up


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def assign_accumulate(X, weights, centers, labels, block_sums, block_weights, block_stats):
    """One Lloyd E-step over a chunk, with the per-block partial sums of the M-step.

    X             (n, d)   IN     rows of the chunk
    weights       (n,)     IN     sample weights
    centers       (k, d)   IN     float64 centres
    labels        (n,)     INOUT  previous labels in, nearest centre out
    block_sums    (b, k, d) OUT   weighted feature sums per block and centre
    block_weights (b, k)   OUT    weight per block and centre
    block_stats   (b, 2)   OUT    per block: weighted inertia, number of labels changed
    """
    n = X.shape[0]
    d = X.shape[1]
    for b in prange(n_blocks(n)):
        block_sums[b, :, :] = 0.0
        block_weights[b, :] = 0.0
        inertia = 0.0
        changed = 0
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            c, dist, _ = _nearest(X, i, centers)
            if labels[i] != c:
                changed += 1
                labels[i] = c
            w = np.float64(weights[i])
            inertia += w * dist
            block_weights[b, c] += w
            for j in range(d):
                block_sums[b, c, j] += w * np.float64(X[i, j])
        block_stats[b, 0] = inertia
        block_stats[b, 1] = changed


@njit(cache=True)
def reduce_blocks(block_sums, block_weights, block_stats, n_used, sums, weight_sums, stats):
    """Add the first ``n_used`` blocks into the running totals, in block order.

    sums (k, d), weight_sums (k,), stats (2,) are INOUT float64 accumulators.
    """
    k, d = sums.shape
    for b in range(n_used):
        for c in range(k):
            weight_sums[c] += block_weights[b, c]
            for j in range(d):
                sums[c, j] += block_sums[b, c, j]
        stats[0] += block_stats[b, 0]
        stats[1] += block_stats[b, 1]


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def assign(X, centers, labels, min_dist):
    """Nearest centre of every row (labels OUT) and its squared distance (min_dist OUT)."""
    n = X.shape[0]
    for b in prange(n_blocks(n)):
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            c, dist, _ = _nearest(X, i, centers)
            labels[i] = c
            min_dist[i] = dist


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def distances_to_labels(X, centers, labels, out):
    """Squared distance of every row to the centre it is labelled with (out OUT)."""
    n, d = X.shape
    for b in prange(n_blocks(n)):
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            c = labels[i]
            s = 0.0
            for j in range(d):
                diff = np.float64(X[i, j]) - centers[c, j]
                s += diff * diff
            out[i] = s


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def all_distances(X, centers, out):
    """Euclidean distance of every row to every centre (out (n, k) OUT)."""
    n, d = X.shape
    k = centers.shape[0]
    for b in prange(n_blocks(n)):
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            for c in range(k):
                s = 0.0
                for j in range(d):
                    diff = np.float64(X[i, j]) - centers[c, j]
                    s += diff * diff
                out[i, c] = np.sqrt(s)


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def min_sq_dist_update(X, point, closest, out):
    """k-means++ D² step: out[i] = min(closest[i], |X[i] - point|²) (out OUT, float64)."""
    n, d = X.shape
    for b in prange(n_blocks(n)):
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            s = 0.0
            for j in range(d):
                diff = np.float64(X[i, j]) - point[j]
                s += diff * diff
            out[i] = min(closest[i], s)


@njit(cache=True)
def minibatch_update(centers, weight_sums, sums, batch_weights):
    """Move each centre to the weighted mean of its past and this batch's points.

    centers (k, d) INOUT float64, weight_sums (k,) INOUT: the running per-centre weight;
    sums (k, d), batch_weights (k,) IN: this batch's per-centre sums. Equivalent to a
    per-centre learning rate of batch_weight / (past_weight + batch_weight).
    """
    k, d = centers.shape
    for c in range(k):
        wb = batch_weights[c]
        if wb > 0.0:
            total = weight_sums[c] + wb
            for j in range(d):
                centers[c, j] = (centers[c, j] * weight_sums[c] + sums[c, j]) / total
            weight_sums[c] = total


@njit(parallel=True, fastmath={"nsz", "arcp", "contract", "afn"}, cache=True)
def shifted_moments(X, weights, shift, block_moments):
    """Per-block weighted sums of (x - shift) and (x - shift)², and a count of non-finite values.

    X (n, d) IN; weights (n,) IN; shift (d,) IN float64, a row of the data (summing around it
    avoids the cancellation of E[x²] - E[x]²); block_moments (b, 2d + 2) OUT: per block the
    d sums, the d sums of squares, the total weight and the number of NaN/inf values. No
    "reassoc" here: an inf - inf must stay NaN and be counted.
    """
    n, d = X.shape
    for b in prange(n_blocks(n)):
        out = block_moments[b]
        out[:] = 0.0
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            w = np.float64(weights[i])
            for j in range(d):
                v = np.float64(X[i, j])
                if not np.isfinite(v):
                    out[2 * d + 1] += 1
                    continue
                diff = v - shift[j]
                out[j] += w * diff
                out[d + j] += w * diff * diff
            out[2 * d] += w


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def assign_accumulate_bounded(
    X,
    weights,
    centers,
    half_gap,
    moved,
    labels,
    upper,
    lower,
    block_sums,
    block_weights,
    block_stats,
    full,
    search_all,
):
    """``assign_accumulate`` that skips rows whose label cannot change (Hamerly, 2010).

    upper (n,) INOUT   a bound above each row's distance to its centre
    lower (n,) INOUT   a bound below its distance to every other centre
    half_gap (k,) IN   half the distance from each centre to the nearest other centre
    moved (k,) IN      how far each centre moved since the bounds were made
    full               True: per-block sums of every row, as ``assign_accumulate``;
                       False: only the changes (rows that moved leave one centre's sums and
                       join another's), to be added to the previous totals
    search_all         search every row and just record its bounds: cheaper than testing
                       the bounds while most rows still change centre (early iterations)
    A row is skipped when its upper bound is below both its lower bound and the half gap of
    its centre (by a relative margin that covers rounding), so labels are exactly those of
    ``assign_accumulate`` for the same centres. Rows labelled -1 get a full search (and need
    ``full``). block_stats[:, 0] (inertia) is not computed: skipped rows have no exact distance.
    """
    n, d = X.shape
    k = centers.shape[0]
    top, second = 0.0, 0.0  # the largest and second largest move
    top_c = -1
    for c in range(k):
        if moved[c] > top:
            second = top
            top = moved[c]
            top_c = c
        elif moved[c] > second:
            second = moved[c]
    for b in prange(n_blocks(n)):
        block_sums[b, :, :] = 0.0
        block_weights[b, :] = 0.0
        changed = 0
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            a = labels[i]
            old = a
            search = search_all or a < 0
            if not search:
                u = upper[i] + moved[a]
                lo = lower[i] - (second if a == top_c else top)
                bound = max(half_gap[a], lo)
                if bound - u <= 1e-9 * (bound + u):
                    s = 0.0
                    for j in range(d):
                        diff = np.float64(X[i, j]) - centers[a, j]
                        s += diff * diff
                    u = np.sqrt(s)
                    search = bound - u <= 1e-9 * (bound + u)
                upper[i] = u
                lower[i] = lo
            if search:
                best_c, best, runner_up = _nearest(X, i, centers)
                upper[i] = np.sqrt(best)
                lower[i] = np.sqrt(runner_up)
                if a != best_c:
                    changed += 1
                    labels[i] = best_c
                a = best_c
            if full:
                w = np.float64(weights[i])
                block_weights[b, a] += w
                for j in range(d):
                    block_sums[b, a, j] += w * np.float64(X[i, j])
            elif a != old:
                w = np.float64(weights[i])
                block_weights[b, a] += w
                block_weights[b, old] -= w
                for j in range(d):
                    v = w * np.float64(X[i, j])
                    block_sums[b, a, j] += v
                    block_sums[b, old, j] -= v
        block_stats[b, 0] = 0.0
        block_stats[b, 1] = changed
