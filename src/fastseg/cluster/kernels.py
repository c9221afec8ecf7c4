"""Numba kernels: nearest-centre assignment, per-block sums, distances, k-means++ / k-means||
D² updates.

Prior validation assumed: arrays are 2-D, finite, of matching shapes. X may be float32 or float64
and read-only (Polars buffers and memmaps are); centres and every accumulator are float64.
Distances the kernels report are direct squared differences in float64. The nearest-centre
search scores candidates in float32 (twice the SIMD lanes) by ``|c|²/2 - x·c`` on rows and
centres less the centres' mean (one multiply-add per feature and centre), bounds that
arithmetic's rounding, and settles near ties in float64 (``_settle_tile``): its labels are
those of a float64 search.

Row kernels split rows into blocks of ``config.BLOCK_ROWS`` starting at fixed row positions;
each block writes its own slot of an output buffer, and blocks are reduced in order afterwards, so
the answer is the same whatever the number of threads. Each is a serial ``nogil`` function over
a range of blocks (``_..._blocks(first, last, ...)``) that ``threads.run_blocks`` runs on the
threads, under a Python function of the kernel's name: compiled without ``parallel=True`` they
take 2 to 5 times less time to compile (5.5 s against 2.5 s for the bounded step), which is most
of a first run, and an input of one block runs on the calling thread, with no launch at all.
"""

import numpy as np
from numba import njit

from ..config import BLOCK_ROWS, FASTMATH, FASTMATH_ORDERED, TILE_ROWS
from .numba_cache import enable_cache
from .threads import run_blocks

CACHE = enable_cache(__file__)  # False when no folder is writable: compile on each run


@njit(cache=CACHE)
def n_blocks(n_rows):
    """Number of reduction blocks covering ``n_rows`` rows."""
    return (n_rows + BLOCK_ROWS - 1) // BLOCK_ROWS


# Relative slack of the bound test: float32 storage of the bounds rounds them by 6e-8.
BOUND_MARGIN = 1e-6
# float32's unit roundoff: the search runs in float32 (twice the SIMD lanes of float64), and
# ``_settle_tile`` makes its answer exact.
F32_UNIT = 2.0**-24


@njit(fastmath=FASTMATH, cache=CACHE, inline="always")
def _sq_dist(X, i, point):
    """Squared distance from row i of X to ``point``, in float64 (direct differences)."""
    s = 0.0
    for j in range(X.shape[1]):
        diff = np.float64(X[i, j]) - point[j]
        s += diff * diff
    return s


@njit(nogil=True, fastmath=FASTMATH_ORDERED, cache=CACHE)
def _labelled_inertia_blocks(first, last, X, weights, centers, labels, block_inertia):
    """``labelled_inertia`` over blocks [first, last)."""
    n = X.shape[0]
    for b in range(first, last):
        total = 0.0
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            total += np.float64(weights[i]) * _sq_dist(X, i, centers[labels[i]])
        block_inertia[b] = total


def labelled_inertia(X, weights, centers, labels, block_inertia):
    """Weighted squared distance of the rows to their labelled centres, per block (OUT).

    Summed row after row (no "reassoc"): the inertia is part of the model file, which must
    be the same whatever the batch size.
    """
    run_blocks(
        _labelled_inertia_blocks, n_blocks(X.shape[0]), X, weights, centers, labels, block_inertia
    )


def search_centres(centers, dtype):
    """The centres as the float32 search uses them: (coords, half, shift, reach), in NumPy
    (a few microseconds a call; compiled, it added most of a second to a first run).

    shift (dp,) in the rows' type ``dtype``: the centres' mean, taken off rows and centres
    alike, so that the expansion below works on values of the data's spread, not its
    distance from the origin; coords (kp, dp) float32: the shifted centres, k and d padded to
    multiples of 4 (zeros), which keeps the search's loops free of remainders; half (kp,)
    float32: half of each shifted centre's squared norm (+inf for the padding, so it is never
    nearest); reach: the largest shifted centre's norm (for ``_settle_tile``).
    """
    k, d = centers.shape
    kp, dp = -(-k // 4) * 4, -(-d // 4) * 4
    shift = np.zeros(dp, dtype)
    shift[:d] = centers.mean(axis=0)
    coords = np.zeros((kp, dp), np.float32)
    half = np.full(kp, np.inf, np.float32)
    with np.errstate(over="ignore"):  # beyond float32: inf, and every row a near tie
        coords[:k, :d] = centers - shift[:d]  # (rounded once, to float32)
        squares = np.einsum("ij,ij->i", coords, coords, dtype=np.float64)
        half[:k] = 0.5 * squares[:k]
    return coords, half, shift, float(np.sqrt(squares[:k].max()))


@njit(cache=CACHE, inline="always")
def _tile_buffers(coords):
    """Per-thread scratch for ``_search_tile`` (float32): the tile, labels, best, runner-up,
    4 scores, and a near-tie flag per row."""
    t = TILE_ROWS
    tile = np.zeros((coords.shape[1], t), np.float32)
    f = np.float32
    buffers = (np.empty(t, np.int32), np.empty(t, f), np.empty(t, f), np.empty((4, t), f))
    return (tile, *buffers, np.empty(t, np.int8))


@njit(fastmath=FASTMATH, cache=CACHE, inline="always")
def _load_tile(flat, d, shift, rows, start, m, tile):
    """Copy rows ``rows[start:start + m]`` of X (``flat``: its values in C order, d a row)
    less ``shift``, feature-major into ``tile`` as float32 (one rounding of x - shift).

    Eight (then four) features of a row at a time, from the flat values: X[i, j] one value
    at a time took 1.5 times as long at d = 8 (6.0 against 4.0 ns a row). The loops for eight
    and four features differ only in that constant, a literal so that each unrolls: one
    helper taking the width loaded as fast but compiled about 0.3 s longer in a cold demo.
    """
    j = 0
    while j + 8 <= d:
        for r in range(m):
            base = rows[start + r] * d + j
            for q in range(8):
                tile[j + q, r] = np.float32(flat[base + q] - shift[j + q])
        j += 8
    while j + 4 <= d:
        for r in range(m):
            base = rows[start + r] * d + j
            for q in range(4):
                tile[j + q, r] = np.float32(flat[base + q] - shift[j + q])
        j += 4
    while j < d:
        for r in range(m):
            tile[j, r] = np.float32(flat[rows[start + r] * d + j] - shift[j])
        j += 1


@njit(fastmath=FASTMATH, cache=CACHE, inline="always")
def _search_tile(tile, coords, half, labels, best, runner_up, score):
    """Nearest centre of each tile row (ties: lowest index), and the best and runner-up scores.

    A centre's score is half its squared distance less half the row's squared norm,
    ``|c|²/2 - x·c``: one multiply-add per feature and centre, where a squared difference
    takes two. Every kernel that chooses a label calls this one function, so they all round
    alike; ``_settle_tile`` turns the scores into distances and makes the choice exact. The
    loops run across the tile's rows (SIMD), four centres and four features at a time (each
    feature value loaded once for four centres); rows past the end of a partial tile hold
    stale values and are ignored by the callers.
    """
    kp, dp = coords.shape
    d0, d1, d2, d3 = score[0], score[1], score[2], score[3]
    for r in range(TILE_ROWS):
        best[r] = np.inf
        runner_up[r] = np.inf
        labels[r] = 0
    for c in range(0, kp, 4):
        for r in range(TILE_ROWS):
            d0[r] = 0.0
            d1[r] = 0.0
            d2[r] = 0.0
            d3[r] = 0.0
        for j in range(0, dp, 4):
            a0, a1, a2, a3 = coords[c, j], coords[c, j + 1], coords[c, j + 2], coords[c, j + 3]
            b0, b1, b2, b3 = (
                coords[c + 1, j],
                coords[c + 1, j + 1],
                coords[c + 1, j + 2],
                coords[c + 1, j + 3],
            )
            e0, e1, e2, e3 = (
                coords[c + 2, j],
                coords[c + 2, j + 1],
                coords[c + 2, j + 2],
                coords[c + 2, j + 3],
            )
            f0, f1, f2, f3 = (
                coords[c + 3, j],
                coords[c + 3, j + 1],
                coords[c + 3, j + 2],
                coords[c + 3, j + 3],
            )
            x0, x1, x2, x3 = tile[j], tile[j + 1], tile[j + 2], tile[j + 3]
            for r in range(TILE_ROWS):
                y0, y1, y2, y3 = x0[r], x1[r], x2[r], x3[r]
                d0[r] += (y0 * a0 + y1 * a1) + (y2 * a2 + y3 * a3)
                d1[r] += (y0 * b0 + y1 * b1) + (y2 * b2 + y3 * b3)
                d2[r] += (y0 * e0 + y1 * e1) + (y2 * e2 + y3 * e3)
                d3[r] += (y0 * f0 + y1 * f1) + (y2 * f2 + y3 * f3)
        h0, h1, h2, h3 = half[c], half[c + 1], half[c + 2], half[c + 3]
        # branch-free, so LLVM keeps the loop vectorised
        for r in range(TILE_ROWS):
            b, second, near = best[r], runner_up[r], labels[r]
            s = h0 - d0[r]
            second, near, b = min(second, max(s, b)), c if s < b else near, min(s, b)
            s = h1 - d1[r]
            second, near, b = min(second, max(s, b)), c + 1 if s < b else near, min(s, b)
            s = h2 - d2[r]
            second, near, b = min(second, max(s, b)), c + 2 if s < b else near, min(s, b)
            s = h3 - d3[r]
            second, near, b = min(second, max(s, b)), c + 3 if s < b else near, min(s, b)
            best[r], runner_up[r], labels[r] = b, second, near


@njit(fastmath=FASTMATH, cache=CACHE, inline="always")
def _settle_tile(X, rows, start, m, tile, centers, reach, near, best, runner_up, tie):
    """Make a float32 tile search exact: ``near`` becomes each row's nearest centre as float64
    arithmetic finds it (ties: lowest index), ``runner_up`` a lower bound on its distance (not
    squared) to every other centre.

    For the shifted, rounded row x and a centre c, the float32 squared distance
    |x|² + 2·score is within (d + 6) float32 roundoffs of (|x| + |c|)² of the exact one (a
    dot product's error bound, whatever the order of its sums), and rounding x - shift and
    c - shift to float32 moves the distance by at most a roundoff of |x| + |c|, its square by
    about two of (|x| + |c|)². With twice these margins, and (|x| + |c|)² ≤ 2·(|x|² + reach²),
    ``margin`` bounds how far each squared distance can be off: a row whose runner-up is
    farther than its best by more than twice that has the float32 choice for its exact
    nearest centre. The others (near ties, a few in a million rows) are searched again in
    float64 from X, every centre, as are rows where float32 overflowed (float64 input beyond
    its range makes the margin infinite, or a score NaN). No square root but the bound's.
    """
    coef = np.float32(4.1 * (tile.shape[0] + 9) * F32_UNIT)
    reach2 = np.float32(reach * reach)
    norm = np.zeros(TILE_ROWS, np.float32)
    for j in range(tile.shape[0]):  # the rows' squared norms, across the tile in SIMD
        x = tile[j]
        for r in range(TILE_ROWS):
            norm[r] += x[r] * x[r]
    for r in range(TILE_ROWS):
        margin = coef * (norm[r] + reach2)
        # (scores are half squared distances; NaN, from values beyond float32, is a tie too)
        tie[r] = not (runner_up[r] - best[r] > margin)
        runner_up[r] = np.sqrt(max(norm[r] + 2 * runner_up[r] - margin, np.float32(0.0)))
    for r in range(m):
        if tie[r]:
            i = rows[start + r]
            first, second, label = np.inf, np.inf, 0
            for c in range(centers.shape[0]):
                dist = _sq_dist(X, i, centers[c])
                if dist < first:
                    first, second, label = dist, first, c
                elif dist < second:
                    second = dist
            near[r] = label
            runner_up[r] = np.sqrt(second)


@njit(fastmath=FASTMATH, cache=CACHE, inline="always")
def _nearest(X, flat, rows, start, m, centers, prepared, buffers):
    """The exact nearest centre of rows ``rows[start:start + m]`` of X (in ``buffers``'
    labels) and a lower bound on their distance to every other centre (its runner-up):
    ``_load_tile``, ``_search_tile`` and ``_settle_tile`` on ``search_centres``' answer."""
    coords, half, shift, reach = prepared
    tile, near, best, runner_up, score, tie = buffers
    _load_tile(flat, X.shape[1], shift, rows, start, m, tile)
    _search_tile(tile, coords, half, near, best, runner_up, score)
    _settle_tile(X, rows, start, m, tile, centers, reach, near, best, runner_up, tie)


def _run_search(kernel, X, centers, *args):
    """``run_blocks`` for a kernel that searches, ``kernel(first, last, X, centers, prepared,
    *args)``: X made C-contiguous (the search reads its values flat) and the centres prepared
    once for every thread (``search_centres``)."""
    X = np.ascontiguousarray(X)
    prepared = search_centres(centers, X.dtype)
    run_blocks(kernel, n_blocks(X.shape[0]), X, centers, prepared, *args)


@njit(cache=CACHE, inline="always")
def _block_rows(b, n, rows):
    """Fill ``rows`` with the row numbers of block b; returns their count."""
    lo = b * BLOCK_ROWS
    m = min(n, lo + BLOCK_ROWS) - lo
    for r in range(m):
        rows[r] = lo + r
    return m


@njit(fastmath=FASTMATH, cache=CACHE, inline="always")
def _add_row(X, i, w, c, sums, weights, lane):
    """Add row i (weight w) to centre c's sums; four lanes break the add-after-add latency."""
    weights[lane, c] += w
    for j in range(X.shape[1]):
        sums[lane, c, j] += w * np.float64(X[i, j])


@njit(cache=CACHE, inline="always")
def _store_block(b, sums, weights, block_sums, block_weights):
    """Reduce the four lanes of a block's sums into its slot, in a fixed order."""
    k, d = block_weights.shape[1], block_sums.shape[2]
    for c in range(k):
        block_weights[b, c] = (weights[0, c] + weights[1, c]) + (weights[2, c] + weights[3, c])
        for j in range(d):
            block_sums[b, c, j] = (sums[0, c, j] + sums[1, c, j]) + (sums[2, c, j] + sums[3, c, j])


@njit(nogil=True, fastmath=FASTMATH, cache=CACHE)
def _assign_accumulate_blocks(
    first, last, X, centers, prepared, weights, labels, block_sums, block_weights, block_stats
):
    """``assign_accumulate`` over blocks [first, last)."""
    n, d = X.shape
    k = centers.shape[0]
    flat = X.reshape(-1)
    buffers = _tile_buffers(prepared[0])
    near = buffers[1]
    rows = np.empty(BLOCK_ROWS, np.int64)
    sums = np.empty((4, k, d))
    wsum = np.empty((4, k))
    for b in range(first, last):
        sums[:] = 0.0
        wsum[:] = 0.0
        m = _block_rows(b, n, rows)
        inertia = 0.0
        changed = 0
        for s in range(0, m, TILE_ROWS):
            t = min(TILE_ROWS, m - s)
            _nearest(X, flat, rows, s, t, centers, prepared, buffers)
            for r in range(t):
                i = rows[s + r]
                c = near[r]
                if labels[i] != c:
                    changed += 1
                    labels[i] = c
                w = np.float64(weights[i])
                inertia += w * _sq_dist(X, i, centers[c])
                _add_row(X, i, w, c, sums, wsum, r & 3)
        _store_block(b, sums, wsum, block_sums, block_weights)
        block_stats[b, 0] = inertia
        block_stats[b, 1] = changed


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
    _run_search(
        _assign_accumulate_blocks,
        X,
        centers,
        weights,
        labels,
        block_sums,
        block_weights,
        block_stats,
    )


@njit(nogil=True, cache=CACHE)
def _standardize_rows_blocks(first, last, X, mean, std, out):
    """``standardize_rows`` over blocks [first, last)."""
    n, d = X.shape
    for b in range(first, last):
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            for j in range(d):
                out[i, j] = (X[i, j] - mean[j]) / std[j]


def standardize_rows(X, mean, std, out):
    """out = (X - mean) / std per column, in X's dtype; no fastmath: rounded as NumPy does.

    One pass over the rows (NumPy's ``-=`` then ``/=`` make two); ``out`` may be X.
    """
    run_blocks(_standardize_rows_blocks, n_blocks(X.shape[0]), X, mean, std, out)


@njit(nogil=True, cache=CACHE)
def _copy_column_blocks(first, last, column, out, j):
    """``copy_column`` over blocks [first, last)."""
    n = column.shape[0]
    for b in range(first, last):
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            out[i, j] = column[i]


def copy_column(column, out, j):
    """out[:, j] = column, in parallel: the decode pass's one copy of each value into its store
    (the threads share the first touch of its fresh pages)."""
    run_blocks(_copy_column_blocks, n_blocks(column.shape[0]), column, out, j)


@njit(cache=CACHE)
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


@njit(nogil=True, fastmath=FASTMATH, cache=CACHE)
def _assign_blocks(first, last, X, centers, prepared, labels, min_dist):
    """``assign`` over blocks [first, last)."""
    n = X.shape[0]
    flat = X.reshape(-1)
    buffers = _tile_buffers(prepared[0])
    near = buffers[1]
    rows = np.empty(BLOCK_ROWS, np.int64)
    for b in range(first, last):
        m = _block_rows(b, n, rows)
        for s in range(0, m, TILE_ROWS):
            t = min(TILE_ROWS, m - s)
            _nearest(X, flat, rows, s, t, centers, prepared, buffers)
            for r in range(t):
                i = rows[s + r]
                labels[i] = near[r]
                min_dist[i] = _sq_dist(X, i, centers[near[r]])


def assign(X, centers, labels, min_dist):
    """Nearest centre of every row (labels OUT) and its squared distance (min_dist OUT)."""
    _run_search(_assign_blocks, X, centers, labels, min_dist)


@njit(nogil=True, fastmath=FASTMATH, cache=CACHE)
def _distances_to_labels_blocks(first, last, X, centers, labels, out):
    """``distances_to_labels`` over blocks [first, last)."""
    n = X.shape[0]
    for b in range(first, last):
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            out[i] = _sq_dist(X, i, centers[labels[i]])


def distances_to_labels(X, centers, labels, out):
    """Squared distance of every row to the centre it is labelled with (out OUT)."""
    run_blocks(_distances_to_labels_blocks, n_blocks(X.shape[0]), X, centers, labels, out)


@njit(nogil=True, fastmath=FASTMATH, cache=CACHE)
def _all_distances_blocks(first, last, X, centers, out):
    """``all_distances`` over blocks [first, last)."""
    n = X.shape[0]
    k = centers.shape[0]
    for b in range(first, last):
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            for c in range(k):
                out[i, c] = np.sqrt(_sq_dist(X, i, centers[c]))


def all_distances(X, centers, out):
    """Euclidean distance of every row to every centre (out (n, k) OUT)."""
    run_blocks(_all_distances_blocks, n_blocks(X.shape[0]), X, centers, out)


@njit(nogil=True, fastmath=FASTMATH, cache=CACHE)
def _min_sq_dist_update_blocks(first, last, X, point, closest, out):
    """``min_sq_dist_update`` over blocks [first, last)."""
    n = X.shape[0]
    for b in range(first, last):
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            out[i] = min(closest[i], _sq_dist(X, i, point))


def min_sq_dist_update(X, point, closest, out):
    """k-means++ D² step: out[i] = min(closest[i], |X[i] - point|²) (out OUT, float64)."""
    run_blocks(_min_sq_dist_update_blocks, n_blocks(X.shape[0]), X, point, closest, out)


@njit(nogil=True, fastmath=FASTMATH_ORDERED, cache=CACHE)
def _nearest_candidate_update_blocks(
    first, last, X, weights, candidates, offset, cost, labels, block_cost
):
    """``nearest_candidate_update`` over blocks [first, last)."""
    n = X.shape[0]
    for b in range(first, last):
        total = 0.0
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            for c in range(candidates.shape[0]):
                dist = _sq_dist(X, i, candidates[c])
                if dist < cost[i]:
                    cost[i] = dist
                    labels[i] = offset + c
            total += np.float64(weights[i]) * cost[i]
        block_cost[b] = total


def nearest_candidate_update(X, weights, candidates, offset, cost, labels, block_cost):
    """k-means|| cost step: score only the new candidates against each row's kept cost.

    X (m, d) IN: a chunk starting at a multiple of ``BLOCK_ROWS``; weights (m,) IN;
    candidates (c, d) IN float64, numbered ``offset``, ``offset + 1``, ... among all candidates;
    cost (m,) INOUT float64: squared distance to the nearest candidate so far (+inf at first);
    labels (m,) INOUT int32: that candidate's number, replaced only by a strictly nearer one
    (the lowest number wins ties, as ``np.argmin`` over all candidates);
    block_cost (n_blocks(m),) OUT: per block, the weighted cost summed row after row.
    """
    run_blocks(
        _nearest_candidate_update_blocks,
        n_blocks(X.shape[0]),
        X,
        weights,
        candidates,
        offset,
        cost,
        labels,
        block_cost,
    )


@njit(cache=CACHE)
def add_weight_by_label(labels, weights, totals):
    """totals[labels[i]] += weights[i], row after row (totals INOUT float64).

    Serial on purpose: called chunk after chunk, the sums are those of one pass in row order,
    whatever the chunk size.
    """
    for i in range(labels.shape[0]):
        totals[labels[i]] += np.float64(weights[i])


@njit(cache=CACHE)
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


@njit(nogil=True, fastmath={"nsz", "arcp", "contract", "afn"}, cache=CACHE)
def _shifted_moments_blocks(first, last, X, weights, shift, block_moments):
    """``shifted_moments`` over blocks [first, last)."""
    n, d = X.shape
    for b in range(first, last):
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


def shifted_moments(X, weights, shift, block_moments):
    """Per-block weighted sums of (x - shift) and (x - shift)², and a count of non-finite values.

    X (n, d) IN; weights (n,) IN; shift (d,) IN float64, a row of the data (summing around it
    avoids the cancellation of E[x²] - E[x]²); block_moments (b, 2d + 2) OUT: per block the
    d sums, the d sums of squares, the total weight and the number of NaN/inf values. No
    "reassoc" here: an inf - inf must stay NaN and be counted.
    """
    run_blocks(_shifted_moments_blocks, n_blocks(X.shape[0]), X, weights, shift, block_moments)


@njit(nogil=True, fastmath=FASTMATH, cache=CACHE)
def _assign_accumulate_bounded_blocks(
    first,
    last,
    X,
    centers,
    prepared,
    weights,
    half_gap,
    drift_max,
    labels,
    lower,
    block_sums,
    block_weights,
    block_stats,
    full,
    search_all,
):
    """``assign_accumulate_bounded`` over blocks [first, last)."""
    n, d = X.shape
    k = centers.shape[0]
    flat = X.reshape(-1)
    buffers = _tile_buffers(prepared[0])
    near, runner_up = buffers[1], buffers[3]
    search = np.empty(BLOCK_ROWS, np.int64)  # rows that need a search, done in tiles
    sums = np.empty((4, k, d))
    wsum = np.empty((4, k))
    fail = np.empty(BLOCK_ROWS, np.bool_)
    for b in range(first, last):
        sums[:] = 0.0
        wsum[:] = 0.0
        lo, hi = b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)
        if search_all:
            fail[: hi - lo] = True
        else:
            for i in range(lo, hi):  # no branch, so LLVM can vectorise the test
                a = max(labels[i], 0)
                u = np.sqrt(_sq_dist(X, i, centers[a]))
                bound = max(half_gap[a], lower[i] - drift_max)
                fail[i - lo] = (bound - u <= BOUND_MARGIN * (bound + u + drift_max)) | (
                    labels[i] < 0
                )
        n_search = 0
        for r in range(hi - lo):  # compact the failing rows, branch-free
            search[n_search] = lo + r
            n_search += fail[r]
        if full and not search_all:  # every row with its current label; the search below
            for i in range(lo, hi):  # moves those that change centre
                if labels[i] >= 0:
                    _add_row(X, i, np.float64(weights[i]), labels[i], sums, wsum, i & 3)
        changed = 0
        for s in range(0, n_search, TILE_ROWS):
            t = min(TILE_ROWS, n_search - s)
            _nearest(X, flat, search, s, t, centers, prepared, buffers)
            for r in range(t):
                i = search[s + r]
                c = near[r]
                old = labels[i]
                lower[i] = runner_up[r] + drift_max
                if old != c:
                    changed += 1
                    labels[i] = c
                if full and search_all:  # every row is here: add it where it now belongs
                    _add_row(X, i, np.float64(weights[i]), c, sums, wsum, r & 3)
                elif old != c:  # the row leaves its old centre's sums for the new one's
                    w = np.float64(weights[i])
                    _add_row(X, i, w, c, sums, wsum, r & 3)
                    if old >= 0:
                        _add_row(X, i, -w, old, sums, wsum, r & 3)
        _store_block(b, sums, wsum, block_sums, block_weights)
        block_stats[b, 0] = 0.0
        block_stats[b, 1] = changed


def assign_accumulate_bounded(
    X,
    weights,
    centers,
    half_gap,
    drift_max,
    labels,
    lower,
    block_sums,
    block_weights,
    block_stats,
    full,
    search_all,
):
    """``assign_accumulate`` that skips the search of rows whose label cannot change (Hamerly,
    2010, with exact upper bounds).

    A row's distance to its own centre costs d flops, so it is computed every pass and serves
    as the exact upper bound: none is stored. The lower bound on the distance to every other
    centre is stored in float32 (4 bytes a row), anchored to the sum of the centres' largest
    moves, so a skipped row writes nothing.
    lower (n,) INOUT   anchored lower bound: the actual bound is ``lower[i] - drift_max``
    half_gap (k,) IN   half the distance from each centre to the nearest other centre
    drift_max          the sum over iterations of the largest centre move
    full               True: per-block sums of every row, as ``assign_accumulate``;
                       False: only the changes (rows that moved leave one centre's sums and
                       join another's), to be added to the previous totals
    search_all         search every row and just record its bound: cheaper than testing
                       while most rows still change centre (early iterations)
    A row skips the search when its distance to its centre is below both its lower bound and
    the half gap of its centre (by ``BOUND_MARGIN``, relative, which covers float32 storage),
    so labels are exactly those of ``assign_accumulate`` for the same centres. The others are
    searched in tiles; rows labelled -1 always are (and need ``full``). block_stats[:, 0]
    (inertia) is not computed: the final ``labelled_inertia`` pass gives it.
    """
    _run_search(
        _assign_accumulate_bounded_blocks,
        X,
        centers,
        weights,
        half_gap,
        drift_max,
        labels,
        lower,
        block_sums,
        block_weights,
        block_stats,
        full,
        search_all,
    )


@njit(cache=CACHE)
def assign_records(X, params, components, centers, scaled_centers, n_groups, out):
    """A few records at a time (``model.assign``): raw float64 rows X (n, d; NaN where a
    value is missing) through log1p, filling, scaling and PCA to their nearest centre and
    the runner-up, without the block machinery a batch needs (a record takes microseconds:
    the per-call overhead is what counts, hence few arguments).

    params (6, d) IN: per feature, 1 where log1p applies, the scaling's centre and spread,
    the PCA mean, its group (0..n_groups-1; a categorical column's one-hot columns are one
    group), and the value a missing one is filled with (after log1p, as the fit filled).
    components (p, d) IN: the PCA (0 rows: none). scaled_centers (k, d) IN: the centres in
    the scaled feature space. out (n, 4 + 2t) OUT: nearest centre, its Euclidean distance,
    the runner-up (-1 when k == 1) and its distance (NaN); then the t groups with the
    largest positive parts of the squared-distance gap between the two, largest first (-1
    past the last), and each one's share of the positive parts' sum. A group's part is the
    sum over its features of (z - runner-up)² - (z - nearest)², z the scaled row. Ties go to
    the lower centre, as in ``assign``.
    """
    n, d = X.shape
    k, p = centers.shape
    t = (out.shape[1] - 4) // 2
    z, y, contrib = np.empty(d), np.empty(p), np.empty(n_groups)
    for i in range(n):
        for j in range(d):
            v = X[i, j]
            if params[0, j] > 0:
                v = np.log1p(v)
            if v != v:  # a missing value, filled as the fit filled (after log1p)
                v = params[5, j]
            z[j] = (v - params[1, j]) / params[2, j]
        if components.shape[0] > 0:
            for q in range(p):
                acc = 0.0
                for j in range(d):
                    acc += (z[j] - params[3, j]) * components[q, j]
                y[q] = acc
        else:
            for q in range(p):
                y[q] = z[q]
        best, second, best_d, second_d = -1, -1, np.inf, np.inf
        for c in range(k):
            acc = 0.0
            for q in range(p):
                diff = y[q] - centers[c, q]
                acc += diff * diff
            if acc < best_d:
                second, second_d = best, best_d
                best, best_d = c, acc
            elif acc < second_d:
                second, second_d = c, acc
        out[i, 0], out[i, 1] = best, np.sqrt(best_d)
        out[i, 2], out[i, 3] = second, np.sqrt(second_d) if second >= 0 else np.nan
        contrib[:] = 0.0
        if second >= 0:
            for j in range(d):
                a, b = z[j] - scaled_centers[second, j], z[j] - scaled_centers[best, j]
                contrib[int(params[4, j])] += a * a - b * b
        _top_groups(contrib, out[i, 4 : 4 + t], out[i, 4 + t : 4 + 2 * t])


@njit(cache=CACHE)
def _top_groups(contrib, top, share):
    """The groups of the largest positive parts, largest first (top OUT, -1 past the last),
    and each one's share of the positive parts' sum (share OUT)."""
    pull = 0.0
    for g in range(contrib.shape[0]):
        if contrib[g] > 0:
            pull += contrib[g]
    for t in range(top.shape[0]):
        top[t], share[t] = -1, 0.0
        best = 0.0
        for g in range(contrib.shape[0]):
            taken = False
            for u in range(t):
                taken = taken or top[u] == g
            if contrib[g] > best and not taken:
                top[t], best = g, contrib[g]
        if top[t] >= 0:
            share[t] = best / pull
