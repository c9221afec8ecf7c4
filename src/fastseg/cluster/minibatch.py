"""Mini-batch k-means: centres move a little per batch, so a few passes over huge data suffice."""

import numpy as np

from ..errors import DataError
from ..progress import report
from . import kernels
from .engine import Engine, random_stream, thread_limit
from .step import Accumulator

CHUNK_ROWS = 1 << 18  # rows per chunk that mini-batches are drawn from


class MiniBatchEngine(Engine):
    """Mini-batch k-means without scikit-learn (what ``fastseg.MiniBatchKMeans`` and the CLI run).

    Rows are decoded once (RAM or spill file, as Lloyd). Each epoch visits the streamed chunks
    in random order and each chunk's rows in random order, ``batch_size`` at a time; every
    centre moves towards its batch mean with a learning rate of batch weight / total weight seen.
    Starving centres (weight below ``reassignment_ratio`` × the largest) jump to random batch
    rows; fitting stops early when the smoothed batch inertia stops improving.
    """

    estimator_name = "MiniBatchKMeans"

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means++",
        max_iter=100,
        batch_size=1024,
        verbose=0,
        compute_labels=True,
        random_state=None,
        tol=0.0,
        max_no_improvement=10,
        init_size=None,
        n_init=1,
        reassignment_ratio=0.01,
        memory_budget=None,
        n_threads=None,
        scale="none",
        log1p=None,
        derive=None,
        pca=None,
        categorical=None,
        category_weight=None,
        missing="error",
        spill_dir=None,
    ):
        self._keep_params(locals())

    def _stream_rows(self):
        # Mini-batches are drawn within chunks, so the chunk size is fixed (never a tunable):
        # the same seed gives the same centres whatever the machine's settings.
        return max(CHUNK_ROWS, self.batch_size)

    def _default_init_size(self):
        return max(3 * self.batch_size, 3 * self.n_clusters)

    def fit(
        self,
        X,
        y=None,
        sample_weight=None,
        *,
        columns=None,
        backend=None,
        client=None,
        persist=False,
    ):
        """Cluster X (array, pandas/polars/Arrow table, or data files with ``columns``) by
        mini-batches; on a Dask cluster as ``KMeans.fit`` (the same mini-batches, each
        chunk's steps run where its rows are)."""
        if self._on_dask(X, backend, sample_weight):
            from ..distributed.fit import fit_minibatch

            return fit_minibatch(
                self, X, columns, client=client, persist=persist, sample_weight=sample_weight
            )
        with self._decoded(X, sample_weight, columns) as (data, random_state):
            self._random_state = random_state  # partial_fit after fit goes on with this stream
            with self._timed("init"):
                self._start(data, random_state)
            with self._timed("iterations"):
                self._run_epochs(data, random_state)
            if self.compute_labels:
                with self._timed("labels"):
                    self._label_all(data)
        return self

    def partial_fit(self, X, y=None, sample_weight=None, *, columns=None):
        """Update the centres with one mini-batch: X, as given (for data arriving over time).

        The first call initialises the centres from X (at least ``n_clusters`` rows). After a
        ``fit`` with scaling, later batches are scaled with the fitted parameters.
        """
        first = not hasattr(self, "cluster_centers_")
        if first:
            self._validate_params()
            if self.scale != "none" or self.pca is not None or self.log1p or self.categorical:
                raise DataError(
                    "partial_fit sees one batch at a time and cannot learn a scaling, log1p, "
                    "one-hot levels or a PCA: transform the data first, or use fit"
                )
        if not hasattr(self, "_random_state"):
            self._random_state = random_stream(self.random_state)
        # the centres move away from the fitted data: its profile and sizes no longer hold
        self.__dict__.pop("reference_", None)
        self.__dict__.pop("cluster_sizes_", None)
        # later batches: rows with nulls dropped or filled (with the fitted values) as the fit did
        source = self._source(X, columns, reset=first, missing=None if first else self.missing)
        with thread_limit(self.n_threads):
            # A partial_fit batch is in memory by definition: no spilling, any size >= 1.
            data = self._load(
                source,
                sample_weight,
                self._random_state,
                self._sample_size(),
                scale="none",
                log1p=False,  # replayed with the scaling by _scaled below
                memory_budget=np.iinfo(np.int64).max,
                min_rows=self.n_clusters if first else 1,
                fill_values=None if first else self.impute_values_,
            )
            try:
                if first:
                    self._remember_input(data)
                    self._start(data, self._random_state)
                elif not hasattr(self, "_counts"):  # a loaded model: go on from its centres
                    self._resume(self.cluster_centers_, self.cluster_centers_.shape[1])
                    self._counts[:] = getattr(self, "_fitted_counts", 0.0)
                rows = self._scaled(data.store.array())
                w = data.weights if data.weights is not None else np.ones(data.n_rows)
                self._step(rows, w, self._random_state)
                self.n_steps_ += 1
                if self.compute_labels:
                    self.labels_ = np.empty(rows.shape[0], dtype=np.int32)
                    dist = np.empty(rows.shape[0])
                    kernels.assign(rows, self._centers, self.labels_, dist)
                    self.inertia_ = float(w @ dist)
            finally:
                data.close()
        self.cluster_centers_ = self._centers.astype(data.dtype)
        if not hasattr(self, "n_iter_"):
            self.n_iter_ = 1
        return self

    # ----- internals -------------------------------------------------------------------
    def _start(self, data, random_state):
        """Initial centres (best of n_init on the init sample) and zeroed per-centre weights."""
        n_init = self._n_starts()
        if n_init == 1:
            self._resume(self._init_centers(data, random_state), data.n_features)
            return
        sample, sample_w = data.init_rows()
        best, best_inertia = None, np.inf
        for _ in range(n_init):
            centers = self._init_centers(data, random_state)
            labels = np.empty(sample.shape[0], dtype=np.int32)
            dist = np.empty(sample.shape[0])
            kernels.assign(sample, centers, labels, dist)
            inertia = float(sample_w @ dist)
            if best is None or inertia < best_inertia:
                best, best_inertia = centers, inertia
        self._resume(best, data.n_features)

    def _restore(self, doc):
        """A loaded model: partial_fit goes on with the fit's rows per centre as the weights
        the centres have seen (zero weights would let one batch replace them)."""
        super()._restore(doc)
        sizes = doc["metrics"].get("cluster_sizes")
        if sizes is not None and len(sizes) == self.n_clusters:
            self._fitted_counts = np.asarray(sizes, dtype=np.float64)

    def _resume(self, centers, n_features):
        """Fresh mini-batch state (zero per-centre weights) starting from ``centers``."""
        self._centers = np.array(centers, dtype=np.float64)
        self._counts = np.zeros(self.n_clusters)
        self._n_since_last_reassign = 0
        self._acc = Accumulator(self.n_clusters, n_features, self.batch_size)
        self._labels_buffer = np.empty(self.batch_size, dtype=np.int32)
        self.n_steps_ = 0
        self._n_features_out = self.n_clusters

    def _run_epochs(self, data, random_state):
        """Mini-batches until the stopping rule or the step budget: epoch after epoch, the
        chunks in random order, each chunk's rows shuffled into batches (``_run_chunk``; on
        Dask, ``data.run_chunk`` runs it on the worker holding the chunk)."""
        n = data.n_rows
        run = _Run(
            max(1, (self.max_iter * n) // self.batch_size), _EarlyStopping(self, n, self._tol(data))
        )
        remote = getattr(data, "run_chunk", None)
        while not run.done:
            starts = range(0, n, data.chunk_rows)
            for i in random_state.permutation(len(starts)):
                if remote is not None:
                    state, run, random_state = remote(self, run, starts[i], random_state)
                    self.__dict__.update(state)
                else:
                    self._run_chunk(run, *data.chunk_at(starts[i]), random_state)
                report("mini-batch", run.step, run.n_steps)
                if run.done:
                    break
        if remote is not None:
            self._random_state = random_state  # the stream as the workers left it
        self.n_steps_ = run.step
        self.n_iter_ = int(np.ceil(run.step * self.batch_size / n))
        self.cluster_centers_ = self._centers.astype(data.dtype)

    def _run_chunk(self, run, rows, w, random_state):
        """The mini-batch steps of one chunk's rows, in a random order (``run`` INOUT)."""
        order = _batches_in_row_order(random_state.permutation(rows.shape[0]), self.batch_size)
        for b in range(0, order.size, self.batch_size):
            idx = order[b : b + self.batch_size]
            old = self._centers.copy() if run.monitor.tol > 0 else None
            batch_inertia = self._step(rows[idx], w[idx], random_state)
            run.step += 1
            shift = None if old is None else float(((self._centers - old) ** 2).sum())
            if run.monitor.converged(run.step, batch_inertia, shift) or run.step >= run.n_steps:
                run.done = True
                return

    # What a chunk's steps change: sent back from a Dask worker (``run_chunk``).
    _chunk_state = ("_centers", "_counts", "_n_since_last_reassign")

    def _tol(self, data):
        return self.tol * float(np.mean(data.scaled_var()))

    def _step(self, rows, w, random_state):
        """One mini-batch update; returns the batch's mean inertia before the update."""
        acc = self._acc
        acc.reset()
        if self._labels_buffer.shape[0] < rows.shape[0]:  # partial_fit batches of any size
            self._labels_buffer = np.empty(rows.shape[0], dtype=np.int32)
        labels = self._labels_buffer[: rows.shape[0]]  # the kernel overwrites every label
        acc.add(rows, w, self._centers, labels)  # a mini-batch is one fragment
        acc.close_fragment()
        kernels.minibatch_update(self._centers, self._counts, acc.sums, acc.weight_sums)
        if self._reassign_due(rows.shape[0]):
            self._reassign(rows, w, random_state)
        total = float(w.sum())
        return acc.inertia / total if total > 0 else 0.0

    def _reassign_due(self, batch_rows):
        self._n_since_last_reassign += batch_rows
        if (self._counts == 0).any() or self._n_since_last_reassign >= 10 * self.n_clusters:
            self._n_since_last_reassign = 0
            return self.reassignment_ratio > 0
        return False

    def _reassign(self, rows, w, random_state):
        """Move starving centres onto random rows of the batch (as scikit-learn does)."""
        counts = self._counts
        starving = counts < self.reassignment_ratio * counts.max()
        limit = int(0.5 * rows.shape[0])
        if starving.sum() > limit:
            starving[np.argsort(counts, kind="stable")[limit:]] = False
        n_moves = int(starving.sum())
        if n_moves == 0 or n_moves == self.n_clusters:
            return
        p = w / w.sum() if np.count_nonzero(w) >= n_moves else None  # zero weight: never picked
        picks = random_state.choice(rows.shape[0], size=n_moves, replace=False, p=p)
        self._centers[starving] = rows[picks]
        counts[starving] = counts[~starving].min()
        if self.verbose:
            print(f"[MiniBatchKMeans] Reassigning {n_moves} cluster centers.")

    def _label_all(self, data):
        """labels_ and inertia_ of every row on the final centres (one more pass)."""
        work = Accumulator(self.n_clusters, data.n_features, data.chunk_rows)
        self.labels_ = np.full(data.n_rows, -1, dtype=np.int32)
        work.e_step(data, self._centers, self.labels_)
        self.inertia_ = work.inertia


class _Run:
    """Where the mini-batches stand: steps taken of the budget, the stopping rule, done."""

    def __init__(self, n_steps, monitor):
        self.n_steps, self.monitor = n_steps, monitor
        self.step, self.done = 0, False


class _EarlyStopping:
    """scikit-learn's stopping rule: a small centre shift, or a smoothed inertia that stalls."""

    def __init__(self, model, n_rows, tol):
        self.tol = tol
        self.verbose = model.verbose
        self.patience = model.max_no_improvement
        self.alpha = min(1.0, model.batch_size * 2.0 / (n_rows + 1))
        self.ewa = self.ewa_min = None
        self.no_improvement = 0

    def converged(self, step, batch_inertia, shift):
        if step == 1:
            return False  # the first batch only measures the initial centres
        a = self.alpha
        self.ewa = batch_inertia if self.ewa is None else self.ewa * (1 - a) + batch_inertia * a
        if self.verbose:
            print(f"Minibatch step {step}: mean batch inertia {batch_inertia}, ewa {self.ewa}")
        if shift is not None and shift <= self.tol:
            return True
        if self.ewa_min is None or self.ewa < self.ewa_min:
            self.no_improvement, self.ewa_min = 0, self.ewa
        else:
            self.no_improvement += 1
        return self.patience is not None and self.no_improvement >= self.patience


def _batches_in_row_order(perm, batch_size):
    """The batches ``perm[b:b + batch_size]``, one after another, each in ascending row order.

    Gathering rows in order is several times faster than in random order; one stable radix
    sort on the batch numbers costs less than sorting every batch.
    """
    n_batches = -(-perm.size // batch_size)
    batch_of_row = np.empty(perm.size, dtype=np.uint16 if n_batches < 2**16 else np.int64)
    batch_of_row[perm] = np.arange(perm.size) // batch_size
    return np.argsort(batch_of_row, kind="stable")
