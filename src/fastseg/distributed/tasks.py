"""What a Dask worker runs on one fragment: read it with the one reader, preprocess it as the
local decode pass does, run the same Numba step; return only small arrays.

Every task is a pure function of (job, fragment, arguments): Dask may run it on any worker,
twice, or again after a worker dies, and get the same answer. A fragment's float sums are one
fragment partial of ``cluster.reduction``'s tree, which the client adds in fragment order.
"""

import fcntl
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .. import config
from ..cluster import kernels
from ..cluster.reduction import FragmentSums
from ..cluster.step import Totals, Workspace, labelled_inertia, step
from ..cluster.threads import thread_limit
from ..errors import DataError
from ..io.sources import FrameSource, RowTap, weight_values
from ..io.store import RowStore, aligned_chunk_rows, positions_within
from ..io.tables import TableReader
from ..preprocess.fit import _report_not_finite
from ..preprocess.scaling import log1p_in_place, standardize
from ..preprocess.settings import IMPUTING
from ..preprocess.stats import CategoryLevels, Covariance, MinMax, Moments, PresentValues

# How far a fragment's rows are decoded: as read (log1p taken), missing values filled, scaled,
# projected (everything: the rows the centres live in).
RAW, FILLED, SCALED, DECODED = range(4)


@dataclass(frozen=True)
class Job:
    """What every task needs to read and decode a fragment (small, pickled into each task).

    ``source``: the Parquet path(s) as the user gave them, or None for a Dask DataFrame (the
    partition comes as the task's argument). ``preprocessor``: the fit's ``Preprocessor``,
    as far as it is fitted (its derived and one-hot columns are computed on read).
    """

    source: object
    columns: tuple  # the feature columns, one-hot ones included
    missing: str
    preprocessor: object
    batch_size: int
    plan: int = 0  # the fit's plan (a new one reads the input's file list and schema again)
    weight: str | None = None  # the column holding each row's sample weight, if any

    @property
    def chunk_rows(self):
        return aligned_chunk_rows(self.batch_size)


@dataclass(frozen=True)
class Fragment:
    """Rows [start, stop) of the input: a Parquet data set's rows (``config.FRAGMENT_ROWS`` of
    them), or one partition of a Dask DataFrame (``index``)."""

    index: int
    start: int
    stop: int


_READERS = {}  # per worker process: the input's reader, its schema read once per plan


def _reader(job, part):
    if part is not None:
        return TableReader(part, job.preprocessor.derivations())
    key = (job.plan, repr(job.source), tuple(n for n, _ in job.preprocessor.derivations()))
    if key not in _READERS:
        _READERS.clear()  # one input at a time
        _READERS[key] = TableReader(job.source, job.preprocessor.derivations())
    return _READERS[key]


def _threads():
    """The worker's thread count (Numba's kernels use as many; none outside a worker)."""
    try:
        from distributed import get_worker

        return get_worker().state.nthreads
    except (ImportError, ValueError):
        return None


class Decoded:
    """A fragment's decoded rows and their weights (None: all 1), kept on a worker."""

    def __init__(self, rows, w):
        self.rows, self.w = rows, w


class Read:
    """What reading a fragment found besides its rows: the source (its dropped rows); a
    ``RowTap`` given here sees the rows as read (the reference profile's sample)."""

    source = None

    def __init__(self, tap=None):
        self.tap = tap


def chunks(job, fragment, data, upto=DECODED, read=None):
    """Yield (first row in the fragment, rows, weights) of the fragment's stored rows, a
    chunk of ``job.chunk_rows`` at a time, decoded ``upto`` a stage: memory follows the
    chunk, not the fragment. ``data``: kept rows (a ``Decoded``), or (partition or None, the
    fragment's weights given as an array or None) to read. The same operations, in the same
    order and chunks, as the local decode pass; ``read`` (a ``Read``) gets the source."""
    chunk = job.chunk_rows
    if isinstance(data, Decoded):
        w = _ones(data.rows) if data.w is None else data.w
        for s in range(0, data.rows.shape[0], chunk):
            yield s, data.rows[s : s + chunk], w[s : s + chunk]
        return
    part, w = data
    source = FrameSource(_reader(job, part), list(job.columns), missing=job.missing)
    if read is not None:
        read.source, source.tap = source, read.tap
    if job.weight is not None:
        w = _weight_column(job, fragment, part)
    buffer = RowStore(chunk, len(job.columns), np.float32, in_memory=True, keep=False)
    for first, rows in buffer.fill(source.column_batches(chunk, _range(fragment, part)), chunk):
        weights = np.ones(rows.shape[0]) if w is None else w[first : first + rows.shape[0]]
        yield first, _decoded(job.preprocessor, rows, upto), weights


def _decoded(pre, rows, upto):
    """One chunk's rows (changed in place) decoded ``upto`` a stage."""
    if pre.log1p_columns:
        log1p_in_place(rows, pre.log1p_columns, pre.feature_names)
    if upto >= FILLED and pre.fill_values is not None:
        holes = np.isnan(rows)
        if holes.any():
            rows[holes] = np.broadcast_to(pre.fill_values, rows.shape)[holes]
    if upto >= SCALED and pre.spread is not None:
        standardize(rows, pre.centre, pre.spread)
    if upto >= DECODED and pre.pca is not None:
        rows = pre.pca.transform(rows)
    return rows


def _range(fragment, part):
    return None if part is not None else (fragment.start, fragment.stop)


def _weight_column(job, fragment, part):
    """The fragment's sample weights from the ``job.weight`` column, float64."""
    return weight_values(_reader(job, part), job.weight, job.batch_size, _range(fragment, part))


def decode(job, fragment, data):
    """The fragment's rows as the centres see them, and their weights (what ``persist=True``
    keeps on workers)."""
    with on_worker():
        parts = list((rows.copy(), w) for _, rows, w in chunks(job, fragment, data))
        rows = np.concatenate([r for r, _ in parts]) if parts else _no_rows(job)
        w = np.concatenate([w for _, w in parts]) if parts else np.empty(0)
        return Decoded(rows, None if (job.weight is None and data[1] is None) else w)


def _no_rows(job):
    pca = job.preprocessor.pca
    return np.empty((0, len(job.columns) if pca is None else pca.components.shape[0]), np.float32)


def levels(job, fragment, data, columns):
    """The distinct values of the categorical ``columns`` in the fragment."""
    found = CategoryLevels(columns)
    part = data[0]
    reader = _reader(job, part)
    with reader.errors():
        for frame in reader.frames(columns, job.batch_size, _range(fragment, part)):
            found.update(frame)
    return found


def first_row(job, fragment, data, upto):
    """The fragment's first stored row (None when it keeps none): what the moments of every
    fragment are taken around, as the local pass takes them around the data's first row."""
    with on_worker():
        for _, rows, _ in chunks(job, fragment, data, upto):
            return rows[0].copy()
    return None


def statistics(job, fragment, data, shift, upto, tapped=None):
    """The fragment's preprocessing statistics: moments around ``shift``, minimum and
    maximum, the sums and counts of present values; its stored and dropped row counts, and
    what its weights are (rows of positive weight, bad weights). ``tapped``: positions of
    input rows (within the fragment) to tap for the reference profile."""
    d = len(job.columns)
    moments, extremes, present = Moments(d, shift=shift), MinMax(d), PresentValues(d)
    imputing = upto == RAW and job.missing in IMPUTING
    n = positive = bad = 0
    weight, read = 0.0, Read(None if tapped is None else RowTap(tapped, d))
    with on_worker():
        for _, rows, w in chunks(job, fragment, data, upto, read):
            if imputing:
                present.update(rows)
            elif moments.update(rows, w):
                _report_not_finite(rows, _Named(job))
            extremes.update(rows)
            n += rows.shape[0]
            positive += int(np.count_nonzero(w > 0))
            bad += int((~np.isfinite(w) | (w < 0)).sum())
            weight += float(w.sum())
    given = data[1]
    if given is not None and given.shape[0] != n + read.source.n_dropped:
        raise DataError(f"sample_weight has {given.shape[0]} values for the rows of a fragment")
    return {
        "moments": moments,
        "extremes": extremes,
        "present": present,
        "rows": n,
        "positive": positive,
        "bad_weights": bad,
        "weight": weight,
        "dropped": read.source.n_dropped,
        "imputed": read.source.n_imputed,
        "tap": read.tap,
    }


class _Named:
    def __init__(self, job):
        self.feature_names = list(job.columns)


def covariance(job, fragment, data, mean):
    """The fragment's scatter around ``mean`` of its scaled rows (PCA's covariance)."""
    scatter = Covariance(mean)
    with on_worker():
        for _, rows, w in chunks(job, fragment, data, SCALED):
            scatter.update(rows, w)
    return scatter


def sample(job, fragment, data, positions, upto, eligible=False):
    """The fragment's stored rows at ``positions`` (sorted, within the fragment; with
    ``eligible``, among its rows of positive weight) and their weights."""
    found, seen = [], 0  # rows (of positive weight, if eligible) before this chunk
    with on_worker():
        for _, rows, w in chunks(job, fragment, data, upto):
            index = np.flatnonzero(w > 0) if eligible else np.arange(rows.shape[0])
            at = index[positions_within(positions, seen, seen + index.size)]
            found.append((rows[at].copy(), w[at]))
            seen += index.size
    rows = np.concatenate([r for r, _ in found]) if found else _no_rows(job)
    return rows, np.concatenate([w for _, w in found]) if found else np.empty(0)


def lloyd_step(job, fragment, data, centers):
    """One E-step over the fragment: its totals (sums, weights, inertia), one closed partial."""
    k, d = centers.shape
    totals, work = Totals(k, d), Workspace(k, d, job.chunk_rows)
    labels = np.empty(job.chunk_rows, dtype=np.int32)
    with on_worker():
        for first, rows, w in chunks(job, fragment, data):
            step(rows, w, centers, labels[: rows.shape[0]], totals, work, first_row=first)
    totals.close_fragment()
    return totals.sums, totals.weight_sums, totals.stats


def inertia(job, fragment, data, centers):
    """The fragment's inertia against its nearest centres (partial) and its label counts."""
    work = Workspace(*centers.shape, job.chunk_rows)
    total, counts = FragmentSums(1), np.zeros(centers.shape[0], dtype=np.int64)
    with on_worker():
        for first, rows, w in chunks(job, fragment, data):
            labels = _nearest(rows, centers)[0]
            labelled_inertia(rows, w, centers, labels, work, total, first)
            counts += np.bincount(labels, minlength=centers.shape[0])
    return total.close(), counts


def farthest(job, fragment, data, centers, m):
    """The fragment's m rows farthest from their nearest centre: (distance, row in the
    fragment, the row, its label, its weight), largest first (relocating empty clusters)."""
    best = None
    with on_worker():
        for first, rows, w in chunks(job, fragment, data):
            labels, dist = _nearest(rows, centers)
            top = np.lexsort((np.arange(dist.shape[0]), -dist))[:m]
            found = (dist[top], first + top, rows[top].astype(np.float64), labels[top], w[top])
            if best is not None:
                found = tuple(np.concatenate(p) for p in zip(best, found, strict=True))
            keep = np.lexsort((found[1], -found[0]))[:m]
            best = tuple(part[keep] for part in found)
    if best is None:  # no rows
        d = centers.shape[1]
        return (
            np.empty(0),
            np.empty(0, np.int64),
            np.empty((0, d)),
            np.empty(0, np.int32),
            np.empty(0),
        )
    return best


def labels(job, fragment, data, centers):
    """The fragment's labels (int32) in input order, -1 for rows dropped for missing values."""
    read = Read()
    with on_worker():
        found = [
            _nearest(rows, centers)[0] for _, rows, _ in chunks(job, fragment, data, read=read)
        ]
    found = np.concatenate(found) if found else np.empty(0, dtype=np.int32)
    source = read.source
    if source is None or not source.n_dropped:
        return found
    every = np.full(found.shape[0] + source.n_dropped, -1, dtype=np.int32)
    kept = np.ones(every.shape[0], dtype=bool)
    kept[source.dropped_rows] = False
    every[kept] = found
    return every


def minibatch_chunk(job, pieces, engine, run, random_state):
    """A chunk's mini-batch steps (``MiniBatchEngine._run_chunk``) on its rows: ``pieces``,
    (fragment, data, first row, rows) of the fragments it spans. Returns the engine state the
    steps changed, ``run`` and the random stream, to go on with on the client."""
    with on_worker():
        rows, w = [], []
        for fragment, data, lo, n in pieces:
            for first, part, v in chunks(job, fragment, data):
                a, b = max(lo, first), min(lo + n, first + part.shape[0])
                if a < b:
                    rows.append(part[a - first : b - first].copy())
                    w.append(v[a - first : b - first])
        engine._run_chunk(run, np.concatenate(rows), np.concatenate(w), random_state)
        state = {name: getattr(engine, name) for name in engine._chunk_state}
        return state, run, random_state


def _nearest(rows, centers):
    labels = np.empty(rows.shape[0], dtype=np.int32)
    dist = np.empty(rows.shape[0], dtype=np.float64)
    kernels.assign(rows, centers, labels, dist)
    return labels, dist


def _ones(rows):
    return np.ones(rows.shape[0], dtype=np.float64)


@contextmanager
def on_worker():
    """Every task's frame: the kernels ready in this process, Numba on the worker's threads."""
    _warm_once()
    with thread_limit(_threads()):
        yield


_warmed = False


def _warm_once():
    """Compile (or load from Numba's cache) every kernel the tasks run, once per process, one
    process of a machine at a time: concurrent writes to Numba's cache have crashed workers
    (Numba issue 4807). The client warms them first, so on its machine workers only read."""
    global _warmed
    if _warmed:
        return
    lock = os.path.join(tempfile.gettempdir(), f"fastseg-numba-{os.getuid()}.lock")
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            warm_kernels()
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
    _warmed = True


def warm_kernels(n_features=3, n_clusters=2):
    """Run every kernel the tasks use on tiny arrays of the types the tasks pass (Numba
    compiles per type, not per size)."""
    d, k = n_features, n_clusters
    rows = np.zeros((max(k, 2), d), dtype=np.float32)
    centers, w = np.zeros((k, d)), _ones(rows)
    labels = np.zeros(rows.shape[0], dtype=np.int32)
    work = Workspace(k, d, rows.shape[0])
    step(rows, w, centers, labels, Totals(k, d), work)
    labelled_inertia(rows, w, centers, _nearest(rows, centers)[0], work, FragmentSums(1))
    Moments(d).update(rows)
    standardize(rows, np.zeros(d), np.ones(d))
    store = RowStore(rows.shape[0], d, np.float32, in_memory=True)
    for _ in store.fill([[rows[:, j] for j in range(d)]], config.BLOCK_ROWS):
        pass
    cost, block_cost = np.full(rows.shape[0], np.inf), np.empty(1)
    kernels.nearest_candidate_update(rows, w, centers, 0, cost, labels, block_cost)
    kernels.add_weight_by_label(labels, w, np.zeros(k))
    kernels.minibatch_update(centers, np.zeros(k), np.zeros((k, d)), np.zeros(k))
