"""The per-partition step of Lloyd and mini-batch k-means: a function of (rows, centres,
per-row state) whose totals (sums, weights, inertia, changes) merge in a fixed order."""

import numpy as np

from .. import config
from ..errors import DataError
from ..io.store import anonymous_array
from . import kernels
from .reduction import FragmentSums, rows_to_fragment_end


class Totals:
    """What one E-step over some rows adds up to: per-centre weighted sums and weights, the
    weighted inertia and the number of labels changed, all float64.

    A full pass follows the summation tree of ``cluster.reduction``: the step folds blocks
    into the open fragment's partial (``_part``) in block order, and each fragment's partial
    is added at its end (``close_fragment``); a Dask task returns one fragment's totals and
    the client ``merge``s them in fragment order, the same additions. So the result does not
    depend on threads, batch size or workers. An update pass (``full=False``: only the rows
    that changed centre) folds straight into the totals.
    """

    def __init__(self, n_clusters, n_features):
        self.sums = np.zeros((n_clusters, n_features))
        self.weight_sums = np.zeros(n_clusters)
        self.stats = np.zeros(2)  # weighted inertia, labels changed
        self._part = Totals.__new__(Totals)
        self._part.sums, self._part.weight_sums = np.zeros_like(self.sums), np.zeros(n_clusters)
        self._part.stats = np.zeros(2)

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

    def merge(self, other):
        """Add another fragment's totals (call in fragment order)."""
        self.sums += other.sums
        self.weight_sums += other.weight_sums
        self.stats += other.stats
        return self

    def close_fragment(self):
        """Add the open fragment's partial (at a fragment's end, and at the end of a pass)."""
        part = self._part
        self.merge(part)
        part.sums[:] = 0.0
        part.weight_sums[:] = 0.0
        part.stats[:] = 0.0

    def folding(self, full):
        """Where a pass's blocks go: the open fragment's partial (full), or these totals."""
        return self._part if full else self


class Workspace:
    """Per-block buffers for the step kernels, made once and reused by every call.

    Rows go to the kernel in waves of whole blocks, so the buffers hold at most
    ``config.accumulator_bytes`` however large the chunk or k × d.
    """

    def __init__(self, n_clusters, n_features, max_rows):
        k, d = n_clusters, n_features
        fit = max(1, config.accumulator_bytes // (8 * (k * d + k + 2)))
        blocks = min(kernels.n_blocks(max(1, max_rows)), fit)
        self.wave_rows = blocks * config.BLOCK_ROWS
        self.block_sums = np.empty((blocks, k, d))
        self.block_weights = np.empty((blocks, k))
        self.block_stats = np.empty((blocks, 2))


def waves(first_row, n_rows, wave_rows):
    """(start, stop) of the waves over n rows starting at ``first_row`` of the data: at most
    ``wave_rows`` rows, never across a fragment's end."""
    s = 0
    while s < n_rows:
        e = min(n_rows, s + wave_rows, s + rows_to_fragment_end(first_row + s))
        yield s, e, (first_row + e) % config.FRAGMENT_ROWS == 0
        s = e


def step(
    rows,
    weights,
    centers,
    labels,
    totals,
    work,
    bounds=None,
    full=True,
    search_all=False,
    first_row=0,
):
    """The E-step of some rows: a function of (rows, centres, per-row state).

    rows (n, d), weights (n,), centers (k, d) IN; labels (n,) INOUT (the per-row state, with
    ``bounds``, a ``Bounds`` over these rows); ``first_row``: where the rows start in the
    data. The rows' partial sums are folded into ``totals`` (INOUT) block by block, in the
    fixed tree (``Totals``); the caller closes the last fragment. With bounds, rows whose
    label cannot change skip the search, and ``full=False`` adds only the changes (rows that
    moved leave one centre's sums for another's) to the previous totals; ``search_all``
    searches every row.
    """
    into = totals.folding(full)
    for s, e, fragment_end in waves(first_row, rows.shape[0], work.wave_rows):
        if bounds is None:
            kernels.assign_accumulate(
                rows[s:e],
                weights[s:e],
                centers,
                labels[s:e],
                work.block_sums,
                work.block_weights,
                work.block_stats,
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
                work.block_sums,
                work.block_weights,
                work.block_stats,
                full,
                search_all,
            )
        kernels.reduce_blocks(
            work.block_sums,
            work.block_weights,
            work.block_stats,
            kernels.n_blocks(rows[s:e].shape[0]),
            into.sums,
            into.weight_sums,
            into.stats,
        )
        if fragment_end and full:
            totals.close_fragment()
    return totals


def labelled_inertia(rows, weights, centers, labels, work, inertia, first_row=0):
    """Add the weighted inertia of rows already labelled with their nearest centre (no
    search) to ``inertia`` (a ``FragmentSums`` of one value), block by block in order."""
    for s, e, _ in waves(first_row, rows.shape[0], work.wave_rows):
        nb = kernels.n_blocks(e - s)
        kernels.labelled_inertia(
            rows[s:e], weights[s:e], centers, labels[s:e], work.block_stats[:nb, 0]
        )
        for b in range(nb):
            inertia.add(
                work.block_stats[b, :1], min(config.BLOCK_ROWS, e - s - b * config.BLOCK_ROWS)
            )
    return inertia


class Accumulator(Totals):
    """Totals over a whole decoded dataset, with the workspace its passes reuse."""

    def __init__(self, n_clusters, n_features, max_rows):
        super().__init__(n_clusters, n_features)
        self.work = Workspace(n_clusters, n_features, max_rows)

    def add(
        self, rows, weights, centers, labels, bounds=None, full=True, search_all=False, first_row=0
    ):
        """Assign ``rows`` (labels INOUT) and fold their sums into these totals."""
        step(rows, weights, centers, labels, self, self.work, bounds, full, search_all, first_row)

    def measure(self, data, centers, labels):
        """Set the inertia of ``labels`` (already nearest) without searching: one cheap pass."""
        inertia = FragmentSums(1)
        for start, rows, w in data.chunks():
            at = labels[start : start + rows.shape[0]]
            labelled_inertia(rows, w, centers, at, self.work, inertia, start)
        self.stats[0] = inertia.close()[0]

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
            self.add(rows, w, centers, labels[start:stop], part, full, search_all, start)
        self.close_fragment()


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


def label_counts(labels, k):
    """Rows per label, counted a chunk at a time (``np.bincount`` would copy all the labels)."""
    counts = np.zeros(k, dtype=np.int64)
    chunk = config.label_chunk_rows
    for s in range(0, labels.shape[0], chunk):
        counts += np.bincount(labels[s : s + chunk], minlength=k)
    return counts


def check_distinct(sizes, k):
    """A cluster still empty after Lloyd (which refills empty ones: ``sizes``, rows per
    cluster) means fewer distinct rows than clusters: say so rather than return a segment of
    nobody."""
    if (sizes == 0).any():
        found = int((sizes > 0).sum())
        raise DataError(
            f"the data has only {found} distinct rows (of positive weight) for n_clusters={k}: "
            f"choose at most {found} segments"
        )


def next_centers(sums, weight_sums, centers):
    """Lloyd's M-step: each centre the mean of its rows (an empty one stays where it is)."""
    return np.where(
        weight_sums[:, None] > 0, sums / np.maximum(weight_sums, 1e-300)[:, None], centers
    )


def take_over(empty, rows, weights, old_labels, sums, weight_sums):
    """Empty clusters take the given rows (farthest first): each row leaves its old cluster's
    sums (sums, weight_sums INOUT)."""
    for cluster, x, w, old in zip(empty, rows, weights, old_labels, strict=False):
        sums[old] -= x * w
        weight_sums[old] -= w
        sums[cluster] = x * w
        weight_sums[cluster] = w


def stage_name(run, n_runs):
    return "lloyd" if n_runs == 1 else f"lloyd {run + 1}/{n_runs}"


def farthest(dist, index, m):
    """Positions of the m largest distances, largest first, lower index first on ties."""
    order = np.lexsort((index, -dist))
    return order[:m]
