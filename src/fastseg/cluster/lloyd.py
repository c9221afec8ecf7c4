"""Lloyd's k-means over data decoded once: in RAM, or streamed back from a spill file."""

import numpy as np

from .. import config
from ..io.store import anonymous_array, hand_back_freed_memory
from ..progress import report
from . import kernels
from .engine import Engine
from .step import (
    Accumulator,
    Bounds,
    check_distinct,
    farthest,
    label_counts,
    next_centers,
    stage_name,
    take_over,
)


class LloydEngine(Engine):
    """Exact Lloyd k-means without scikit-learn (what ``fastseg.KMeans`` and the CLI run)."""

    estimator_name = "KMeans"
    _run_settings = (*Engine._run_settings, "batch_size")  # rows per streamed batch

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means++",
        n_init=1,
        max_iter=300,
        tol=1e-4,
        random_state=None,
        batch_size=None,
        memory_budget=None,
        n_threads=None,
        verbose=0,
        init_size=None,
        scale="none",
        log1p=None,
        derive=None,
        pca=None,
        categorical=None,
        category_weight=None,
        missing="error",
        spill_dir=None,
        algorithm="auto",
    ):
        self._keep_params(locals())

    def _bounded(self, data):
        """Hamerly bounds (4 bytes a row) when the rows are in RAM or when asked for."""
        return self.algorithm == "hamerly" or (self.algorithm == "auto" and data.store.in_memory)

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
        """Cluster X: an array, a pandas/polars/Arrow table, or data files (Parquet, CSV, NDJSON)
        with ``columns``.

        A Dask DataFrame, or Parquet with ``backend="dask"``, is fitted on a Dask cluster
        (``client``, default: the current one), one task per fragment, nothing gathered;
        ``persist=True`` keeps the decoded fragments in the workers' memory between passes
        (see ``fastseg.distributed``). ``sample_weight``: a weight per row, or the name of
        the table's column holding them.
        """
        if self._on_dask(X, backend, sample_weight):
            from ..distributed.fit import fit_kmeans

            return fit_kmeans(
                self, X, columns, client=client, persist=persist, sample_weight=sample_weight
            )
        with self._decoded(X, sample_weight, columns) as (data, random_state):
            self._fit_data(data, random_state)
        return self

    def _fit_data(self, data, random_state, keep_sample=False):
        """Fit on decoded data; ``keep_sample`` keeps the init sample for another fit."""
        tol = self.tol * float(np.mean(data.scaled_var()))
        n_init = self._n_starts()
        with self._timed("init"):  # every start first: the iterations draw no random numbers
            starts = [self._init_centers(data, random_state) for _ in range(n_init)]
        if not keep_sample:
            data.release_sample()
            hand_back_freed_memory()  # the sample and k-means++'s work arrays, before iterating
        best = None
        for run, centers in enumerate(starts):
            with self._timed("iterations"):
                result = lloyd(
                    data,
                    centers,
                    self.max_iter,
                    tol,
                    self.verbose,
                    run,
                    n_init,
                    bounded=self._bounded(data),
                )
            if best is None or result[2] < best[2]:
                best = result
        centers, labels, inertia, n_iter = best
        sizes = label_counts(labels, self.n_clusters)  # counted once (a pass over the labels)
        check_distinct(sizes, self.n_clusters)
        self.cluster_centers_ = centers.astype(data.dtype)
        self.labels_ = labels
        self.cluster_sizes_ = sizes
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        self._n_features_out = self.n_clusters


def lloyd(data, centers, max_iter, tol, verbose=0, run=0, n_runs=1, bounded=False):
    """Lloyd iterations from float64 ``centers``; returns (centers, labels, inertia, n_iter).

    Stops when no label changes (strict convergence) or the squared centre shift is at most
    ``tol``; after a non-strict stop one more E-step makes labels agree with the centres.
    ``bounded`` keeps Hamerly bounds so most rows skip the search in later iterations, and
    updates the centre sums with the rows that changed centre: the same labels, centres equal
    up to rounding (recounted exactly every ``config.exact_sums_every`` iterations). The
    inertia comes from one last pass without search, so both paths report it alike.
    """
    k = centers.shape[0]
    labels = anonymous_array(data.n_rows, np.int32)
    labels.fill(-1)
    work = Accumulator(k, data.n_features, data.chunk_rows)
    bounds = Bounds(data.n_rows, k) if bounded else None
    centers = centers.copy()
    strict = False
    n_iter = 0
    # Take the sums over every row this pass, or update them with the rows that changed
    # centre: cheaper even while many rows change (busy passes took 97 ms a pass at 10M x 8,
    # k=8, against 80 ms updating).
    exact = True
    busy = True  # most rows may change centre: search them all rather than test bounds
    for it in range(max_iter):
        work.e_step(data, centers, labels, bounds, full=exact, search_all=busy)
        if not exact and _suspect_sums(work.weight_sums):
            changed = work.changed  # a centre may have emptied: recount it exactly
            work.e_step(data, centers, labels, bounds, full=True)
            work.stats[1] = changed
        busy = work.changed > config.busy_fraction * data.n_rows
        n_iter = it + 1
        if it > 0 and work.changed == 0:
            strict = True  # same labels as the last pass: the centres cannot move
            break
        relocated = bool((work.weight_sums == 0).any())
        if relocated:
            relocate_empty_clusters(data, centers, labels, work.sums, work.weight_sums)
        new_centers = next_centers(work.sums, work.weight_sums, centers)
        shift = float(((new_centers - centers) ** 2).sum())
        if bounds is not None:
            bounds.update(centers, new_centers)
            # Updated sums drift by rounding: recount them now and then, and after a relocation
            # (which moved a row's weight without changing its label).
            exact = relocated or (it + 1) % config.exact_sums_every == 0
        centers = new_centers
        if verbose:
            print(f"Iteration {it}, inertia {work.inertia}, centre shift {shift}")
        report(stage_name(run, n_runs), it + 1, max_iter)
        if shift <= tol:
            break
    if not strict:  # labels for the last centres (the bounds spare most rows the search)
        work.e_step(data, centers, labels, bounds, full=bounds is None)
    work.measure(data, centers, labels)  # the same arithmetic whichever path ran
    if verbose:
        print("Converged at iteration", n_iter, "(strict)" if strict else "")
    report(stage_name(run, n_runs), max_iter, max_iter)
    return centers, labels, work.inertia, n_iter


def _suspect_sums(weight_sums):
    """True when a centre's running weight is near zero: it may really be empty."""
    return bool((weight_sums <= 1e-9 * max(float(weight_sums.max()), 1e-300)).any())


def relocate_empty_clusters(data, centers, labels, sums, weight_sums):
    """Move each empty cluster onto one of the rows farthest from their centre.

    As scikit-learn: the farthest row (by squared distance to its assigned centre) goes to the
    first empty cluster, the next to the second, and so on; each row leaves its old cluster's
    sums. Ties go to the lower row index, so the choice is deterministic.
    """
    empty = np.flatnonzero(weight_sums == 0)
    m = empty.size
    best_d = np.empty(0)
    best_i = np.empty(0, dtype=np.int64)
    best_x = np.empty((0, data.n_features))
    best_w = np.empty(0)
    for start, rows, w in data.chunks():
        dist = np.empty(rows.shape[0])
        kernels.distances_to_labels(rows, centers, labels[start : start + rows.shape[0]], dist)
        top = farthest(dist, np.arange(start, start + rows.shape[0]), m)
        best_d = np.concatenate([best_d, dist[top]])
        best_i = np.concatenate([best_i, start + top])
        best_x = np.concatenate([best_x, rows[top].astype(np.float64)])
        best_w = np.concatenate([best_w, w[top]])
        keep = farthest(best_d, best_i, m)
        best_d, best_i, best_x, best_w = best_d[keep], best_i[keep], best_x[keep], best_w[keep]
    take_over(empty, best_x, best_w, labels[best_i], sums, weight_sums)
