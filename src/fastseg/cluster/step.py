"""One E-step's totals (per-centre sums and weights, inertia, label changes), in block order."""

import numpy as np

from .. import config
from ..io.dataset import anonymous_array
from . import kernels


class Accumulator:
    """Buffers for ``kernels.assign_accumulate``, made once and reused by every pass.

    Rows go to the kernel in waves of whole blocks, so the per-block buffers hold at most
    ``config.accumulator_bytes`` however large the chunk or k × d; the blocks are reduced in
    order, so totals do not depend on threads, waves or chunk size.
    """

    def __init__(self, n_clusters, n_features, max_rows):
        k, d = n_clusters, n_features
        fit = max(1, config.accumulator_bytes // (8 * (k * d + k + 2)))
        blocks = min(kernels.n_blocks(max(1, max_rows)), fit)
        self.wave_rows = blocks * config.BLOCK_ROWS
        self.block_sums = np.empty((blocks, k, d))
        self.block_weights = np.empty((blocks, k))
        self.block_stats = np.empty((blocks, 2))
        self.sums = np.zeros((k, d))
        self.weight_sums = np.zeros(k)
        self.stats = np.zeros(2)  # weighted inertia, labels changed

    @property
    def inertia(self):
        return float(self.stats[0])

    @property
    def changed(self):
        return int(self.stats[1])

    def reset(self, sums=True):
        """Zero the pass statistics, and the running sums unless they are to be updated."""
        if sums:
            self.sums[:] = 0.0
            self.weight_sums[:] = 0.0
        self.stats[:] = 0.0

    def add(self, rows, weights, centers, labels, bounds=None, full=True, search_all=False):
        """Assign ``rows`` (labels INOUT) and add their sums to the totals.

        With ``bounds`` (a ``Bounds`` over these rows), rows whose label cannot change skip
        the search; with ``full=False`` only the rows that changed centre update the sums.
        """
        for s in range(0, rows.shape[0], self.wave_rows):
            e = s + self.wave_rows
            if bounds is None:
                kernels.assign_accumulate(
                    rows[s:e],
                    weights[s:e],
                    centers,
                    labels[s:e],
                    self.block_sums,
                    self.block_weights,
                    self.block_stats,
                )
            else:
                kernels.assign_accumulate_bounded(
                    rows[s:e],
                    weights[s:e],
                    centers,
                    bounds.half_gap,
                    bounds.drift_max,
                    labels[s:e],
                    bounds.lower[s:e],
                    self.block_sums,
                    self.block_weights,
                    self.block_stats,
                    full,
                    search_all,
                )
            kernels.reduce_blocks(
                self.block_sums,
                self.block_weights,
                self.block_stats,
                kernels.n_blocks(rows[s:e].shape[0]),
                self.sums,
                self.weight_sums,
                self.stats,
            )

    def measure(self, data, centers, labels):
        """Set the inertia of ``labels`` (already nearest) without searching: one cheap pass."""
        self.stats[0] = 0.0
        for start, rows, w in data.chunks():
            for s in range(0, rows.shape[0], self.wave_rows):
                part = rows[s : s + self.wave_rows]
                nb = kernels.n_blocks(part.shape[0])
                at = start + s
                kernels.labelled_inertia(
                    part,
                    w[s : s + self.wave_rows],
                    centers,
                    labels[at : at + part.shape[0]],
                    self.block_stats[:nb, 0],
                )
                for b in range(nb):
                    self.stats[0] += self.block_stats[b, 0]

    def e_step(self, data, centers, labels, bounds=None, full=True, search_all=False):
        """Assign every row of ``data``; the totals then describe the whole pass.

        With ``bounds``, inertia is not computed (skipped rows have no exact distance), and
        ``full=False`` updates the previous pass's sums with the rows that changed centre;
        ``search_all`` searches every row and only records the bounds.
        """
        self.reset(sums=full)
        for start, rows, w in data.chunks():
            stop = start + rows.shape[0]
            part = None if bounds is None else bounds.rows(start, stop)
            self.add(rows, w, centers, labels[start:stop], part, full, search_all)


class Bounds:
    """Hamerly's lower bounds, which let most rows skip the nearest-centre search.

    One float32 a row (``kernels.BOUND_MARGIN`` covers the rounding): a lower bound on the
    row's distance to every centre but its own. Its distance to its own centre is computed
    afresh each pass, so no upper bound is kept. The stored values are anchored to the sum of
    the centres' largest moves (``drift_max``), so a pass writes only the rows it searched;
    ``lower_bounds`` gives the actual bounds. Every row starts unbounded (label -1 forces a
    search).
    """

    def __init__(self, n_rows, n_clusters):
        self.lower = anonymous_array(n_rows, np.float32)  # zero-filled
        self.drift_max = 0.0
        self.half_gap = np.zeros(n_clusters)

    def rows(self, start, stop):
        part = Bounds.__new__(Bounds)
        part.lower = self.lower[start:stop]
        part.drift_max, part.half_gap = self.drift_max, self.half_gap
        return part

    def lower_bounds(self):
        """Lower bounds on each row's distance to every other centre."""
        return self.lower - self.drift_max

    def update(self, old_centers, new_centers):
        """Add the largest centre move to the drift, and record the new half gaps."""
        moved = np.sqrt(((new_centers - old_centers) ** 2).sum(axis=1))
        self.drift_max += float(moved.max())
        k = new_centers.shape[0]
        if k == 1:
            self.half_gap[:] = np.inf
            return
        gaps = np.sqrt(((new_centers[:, None, :] - new_centers[None, :, :]) ** 2).sum(axis=2))
        gaps[np.arange(k), np.arange(k)] = np.inf
        self.half_gap[:] = 0.5 * gaps.min(axis=1)


_CHUNK = 1 << 20  # labels counted this many at a time


def label_counts(labels, k):
    """Rows per label, counted a chunk at a time (``np.bincount`` would copy all the labels)."""
    counts = np.zeros(k, dtype=np.int64)
    for s in range(0, labels.shape[0], _CHUNK):
        counts += np.bincount(labels[s : s + _CHUNK], minlength=k)
    return counts
