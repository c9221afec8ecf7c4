"""Numba kernels of k-prototypes: nearest prototype by the mixed cost, per-block numeric sums and
category counts, and the k-means++ cost update.

The mixed cost of a row to a prototype is Huang's (1998), as the kmodes package computes it:
the squared Euclidean distance of the numeric values plus ``gamma`` times the number of
categorical columns whose code differs from the prototype's mode. Codes are the indices of the
sorted levels learned in the fit; -1 (a level the fit never saw) matches no mode.

Prior validation assumed: numeric rows finite (float32 or float64, possibly read-only), codes
int32 in range or -1, prototypes float64, modes int32. As in ``kernels``, rows are cut into
blocks of ``config.BLOCK_ROWS`` at fixed positions, each block writes its own slot, and the
caller folds the slots in block order: the answer does not depend on threads or batch size.
"""

import numpy as np
from numba import njit, prange

from ..config import BLOCK_ROWS, FASTMATH
from .kernels import n_blocks
from .numba_cache import enable_cache

CACHE = enable_cache(__file__)  # False when no folder is writable: compile on each run


@njit(fastmath=FASTMATH, cache=CACHE, inline="always")
def _cost(num, codes, i, centers, modes, c, gamma):
    """Mixed cost of row i to prototype c: squared distance + gamma x mismatches (float64)."""
    s = 0.0
    for j in range(num.shape[1]):
        diff = np.float64(num[i, j]) - centers[c, j]
        s += diff * diff
    mismatches = 0
    for j in range(codes.shape[1]):
        if codes[i, j] != modes[c, j]:
            mismatches += 1
    return s + gamma * mismatches


@njit(fastmath=FASTMATH, cache=CACHE, inline="always")
def _nearest(num, codes, i, centers, modes, gamma):
    """The prototype of least mixed cost for row i (ties: lowest index, as np.argmin) and
    that cost. Every kernel that chooses a label calls this one function, so all round alike."""
    best, label = np.inf, 0
    for c in range(centers.shape[0]):
        s = _cost(num, codes, i, centers, modes, c, gamma)
        if s < best:
            best, label = s, c
    return label, best


@njit(parallel=True, fastmath=FASTMATH, cache=CACHE)
def assign_accumulate(
    num,
    codes,
    weights,
    centers,
    modes,
    gamma,
    offsets,
    labels,
    block_sums,
    block_counts,
    block_weights,
    block_stats,
):
    """One E-step over a chunk of rows, with the per-block partials of the M-step.

    num           (n, p)    IN     numeric values
    codes         (n, c)    IN     category codes, all >= 0 (rows of the fit)
    weights       (n,)      IN     sample weights
    centers       (k, p)    IN     numeric part of the prototypes, float64
    modes         (k, c)    IN     categorical part of the prototypes (codes)
    gamma         float     IN     weight of one categorical mismatch
    offsets       (c + 1,)  IN     column j's levels are count slots offsets[j]:offsets[j+1]
    labels        (n,)      INOUT  previous labels in, nearest prototype out
    block_sums    (b, k, p) OUT    weighted numeric sums per block and prototype
    block_counts  (b, k, L) OUT    weighted level counts per block and prototype
    block_weights (b, k)    OUT    weight per block and prototype
    block_stats   (b, 2)    OUT    per block: weighted cost, number of labels changed
    """
    n, p = num.shape
    for b in prange(n_blocks(n)):
        block_sums[b] = 0.0
        block_counts[b] = 0.0
        block_weights[b] = 0.0
        cost = 0.0
        changed = 0
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            c, best = _nearest(num, codes, i, centers, modes, gamma)
            if labels[i] != c:
                changed += 1
                labels[i] = c
            w = np.float64(weights[i])
            cost += w * best
            block_weights[b, c] += w
            for j in range(p):
                block_sums[b, c, j] += w * np.float64(num[i, j])
            for j in range(codes.shape[1]):
                block_counts[b, c, offsets[j] + codes[i, j]] += w
        block_stats[b, 0] = cost
        block_stats[b, 1] = changed


@njit(parallel=True, fastmath=FASTMATH, cache=CACHE)
def assign(num, codes, centers, modes, gamma, labels, costs):
    """Nearest prototype of each row (predict; the farthest rows of a fit).

    num     (n, p)  IN   numeric values
    codes   (n, c)  IN   category codes, -1 for a level the fit never saw
    centers (k, p)  IN   numeric part of the prototypes, float64
    modes   (k, c)  IN   categorical part of the prototypes
    gamma   float   IN   weight of one categorical mismatch
    labels  (n,)    OUT  nearest prototype (ties: lowest index)
    costs   (n,)    OUT  mixed cost to it
    """
    n = num.shape[0]
    for b in prange(n_blocks(n)):
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            labels[i], costs[i] = _nearest(num, codes, i, centers, modes, gamma)


@njit(parallel=True, fastmath=FASTMATH, cache=CACHE)
def closer_costs(num, codes, row, gamma, closest, out):
    """k-means++'s update for a candidate prototype: ``out[i] = min(closest[i], cost of row i
    to row ``row``)``, the mixed cost to the nearest prototype once that row is one.

    num     (n, p)  IN   numeric values (the init sample)
    codes   (n, c)  IN   category codes
    row     int     IN   the candidate's row
    gamma   float   IN   weight of one categorical mismatch
    closest (n,)    IN   cost to the nearest prototype chosen so far (inf before the first)
    out     (n,)    OUT  the same with the candidate added
    """
    n = num.shape[0]
    center = np.empty((1, num.shape[1]))
    for j in range(num.shape[1]):
        center[0, j] = num[row, j]
    mode = np.empty((1, codes.shape[1]), np.int32)
    for j in range(codes.shape[1]):
        mode[0, j] = codes[row, j]
    for b in prange(n_blocks(n)):
        for i in range(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS)):
            out[i] = min(closest[i], _cost(num, codes, i, center, mode, 0, gamma))
