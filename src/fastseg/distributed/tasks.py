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
from ..io.sources import FrameSource, weight_values
from ..io.store import RowStore, aligned_chunk_rows
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


def read_rows(job, fragment, data, upto=DECODED):
    """The fragment's rows, float32, decoded ``upto`` a stage, their weights (float64, or
    None for all 1) and the source (its dropped rows). ``data``: (partition or None, the
    fragment's weights given as an array or None). The same operations, in the same order,
    as the local decode pass."""
    part, w = data
    source = FrameSource(_reader(job, part), list(job.columns), missing=job.missing)
    n_max = len(part) if part is not None else fragment.stop - fragment.start
    store = RowStore(n_max, len(job.columns), np.float32, in_memory=True)
    chunk = job.chunk_rows
    for _ in store.fill(source.column_batches(chunk, _range(fragment, part)), chunk):
        pass
    rows, pre = store.array(), job.preprocessor
    if job.weight is not None:
        w = _weight_column(job, fragment, part)
    if pre.log1p_columns:
        log1p_in_place(rows, pre.log1p_columns, pre.feature_names)
    if upto >= FILLED and pre.fill_values is not None:
        holes = np.isnan(rows)
        if holes.any():
            rows[holes] = np.broadcast_to(pre.fill_values, rows.shape)[holes]
    if upto >= SCALED and pre.spread is not None:
        for s in range(0, rows.shape[0], chunk):
            standardize(rows[s : s + chunk], pre.centre, pre.spread)
    if upto >= DECODED and pre.pca is not None:
        p = pre.pca.components.shape[0]
        projected = np.empty((rows.shape[0], p), dtype=np.float32)
        for s in range(0, rows.shape[0], chunk):
            projected[s : s + chunk] = pre.pca.transform(rows[s : s + chunk])
        rows = projected
    return rows, w, source


def _range(fragment, part):
    return None if part is not None else (fragment.start, fragment.stop)


def _weight_column(job, fragment, part):
    """The fragment's sample weights from the ``job.weight`` column, float64."""
    return weight_values(_reader(job, part), job.weight, job.batch_size, _range(fragment, part))


def decode(job, fragment, data):
    """The fragment's rows as the centres see them, and their weights (what ``persist=True``
    keeps on workers)."""
    with on_worker():
        rows, w, _ = read_rows(job, fragment, data)
        return Decoded(rows, w)


def _rows(job, fragment, data):
    """Decoded rows and weights (all 1 when none were given): kept ones (``data`` a
    ``Decoded``) or read now."""
    if isinstance(data, Decoded):
        rows, w = data.rows, data.w
    else:
        rows, w, _ = read_rows(job, fragment, data)
    return rows, _ones(rows) if w is None else w


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
    rows = read_rows(job, fragment, data, upto)[0]
    return None if rows.shape[0] == 0 else rows[0].copy()


def statistics(job, fragment, data, shift, upto):
    """The fragment's preprocessing statistics: moments around ``shift``, minimum and
    maximum, the sums and counts of present values; its stored and dropped row counts, and
    what its weights are (rows of positive weight, bad weights)."""
    with on_worker():
        rows, w, source = read_rows(job, fragment, data, upto)
        d = rows.shape[1]
        moments, extremes, present = Moments(d, shift=shift), MinMax(d), PresentValues(d)
        imputing = upto == RAW and job.missing in IMPUTING
        for s in range(0, rows.shape[0], job.chunk_rows):
            batch = rows[s : s + job.chunk_rows]
            if imputing:
                present.update(batch)
            elif moments.update(batch, None if w is None else w[s : s + job.chunk_rows]):
                _report_not_finite(batch, _Named(job))
            extremes.update(batch)
        if w is not None and w.shape[0] != rows.shape[0]:
            raise DataError(
                f"sample_weight has {w.shape[0]} values for the {rows.shape[0]} rows of "
                f"fragment {fragment.index}"
            )
        return {
            "positive": rows.shape[0] if w is None else int(np.count_nonzero(w > 0)),
            "bad_weights": 0 if w is None else int((~np.isfinite(w) | (w < 0)).sum()),
            "weight": float(rows.shape[0] if w is None else w.sum()),
            "moments": moments,
            "extremes": extremes,
            "present": present,
            "rows": rows.shape[0],
            "dropped": source.n_dropped,
            "imputed": source.n_imputed,
        }


class _Named:
    def __init__(self, job):
        self.feature_names = list(job.columns)


def covariance(job, fragment, data, mean):
    """The fragment's scatter around ``mean`` of its scaled rows (PCA's covariance)."""
    with on_worker():
        rows, w, _ = read_rows(job, fragment, data, SCALED)
        scatter = Covariance(mean)
        scatter.update(rows, _ones(rows) if w is None else w)
        return scatter


def sample(job, fragment, data, positions, upto, eligible=False):
    """The fragment's stored rows at ``positions`` (sorted, within the fragment; with
    ``eligible``, among its rows of positive weight) and their weights."""
    with on_worker():
        rows, w, _ = read_rows(job, fragment, data, upto)
        w = _ones(rows) if w is None else w
        if eligible:
            positions = np.flatnonzero(w > 0)[positions]
        return rows[positions], w[positions]


def lloyd_step(job, fragment, data, centers):
    """One E-step over the fragment: its totals (sums, weights, inertia), one closed partial."""
    with on_worker():
        rows, w = _rows(job, fragment, data)
        k, d = centers.shape
        totals, work = Totals(k, d), Workspace(k, d, rows.shape[0])
        labels = np.empty(rows.shape[0], dtype=np.int32)
        step(rows, w, centers, labels, totals, work)
        totals.close_fragment()
        return totals.sums, totals.weight_sums, totals.stats


def minibatch_chunk(job, pieces, engine, run, random_state):
    """A chunk's mini-batch steps (``MiniBatchEngine._run_chunk``) on its rows: ``pieces``,
    (fragment, data, first row, rows) of the fragments it spans. Returns the engine state the
    steps changed, ``run`` and the random stream, to go on with on the client."""
    with on_worker():
        cut = [(*_rows(job, f, x), lo, n) for f, x, lo, n in pieces]
        rows = np.concatenate([r[lo : lo + n] for r, _, lo, n in cut])
        w = np.concatenate([v[lo : lo + n] for _, v, lo, n in cut])
        engine._run_chunk(run, rows, w, random_state)
        state = {name: getattr(engine, name) for name in engine._chunk_state}
        return state, run, random_state


def inertia(job, fragment, data, centers):
    """The fragment's inertia against its nearest centres (partial) and its label counts."""
    with on_worker():
        rows, w = _rows(job, fragment, data)
        labels = _nearest(rows, centers)[0]
        work = Workspace(*centers.shape, rows.shape[0])
        total = labelled_inertia(rows, w, centers, labels, work, FragmentSums(1))
        return total.close(), np.bincount(labels, minlength=centers.shape[0])


def farthest(job, fragment, data, centers, m):
    """The fragment's m rows farthest from their nearest centre: (distance, row in the
    fragment, the row, its label, its weight), largest first (relocating empty clusters)."""
    with on_worker():
        rows, w = _rows(job, fragment, data)
        labels, dist = _nearest(rows, centers)
        top = np.lexsort((np.arange(dist.shape[0]), -dist))[:m]
        return dist[top], top, rows[top].astype(np.float64), labels[top], w[top]


def labels(job, fragment, data, centers):
    """The fragment's labels (int32) in input order, -1 for rows dropped for missing values."""
    with on_worker():
        rows, _, source = read_rows(job, fragment, data)
        found = _nearest(rows, centers)[0]
        if not source.n_dropped:
            return found
        every = np.full(rows.shape[0] + source.n_dropped, -1, dtype=np.int32)
        kept = np.ones(every.shape[0], dtype=bool)
        kept[source.dropped_rows] = False
        every[kept] = found
        return every


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
