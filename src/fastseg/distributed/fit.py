"""Fitting k-means on a Dask cluster: the client plans the fragments, sends one task per
fragment for each pass, and merges the small results in fragment order; no row reaches it
but bounded samples: the init sample (``init_size`` rows at most) and, for robust scaling or
median filling, the quantile sample (``config.quantile_rows``).

The passes are those of the local engine (statistics, filling, scaling, PCA, the init sample,
Lloyd's E-steps, the inertia), each float sum in ``cluster.reduction``'s tree, so a Parquet
input gives the model the local engine gives (``algorithm="lloyd"``), bit for bit, with any
number of workers. Lloyd runs without Hamerly bounds (they are per-row state; tasks stay pure
functions that Dask may rerun anywhere) and without labels: an E-step whose totals equal the
last one's changed no label, which is the local engine's strict convergence.
"""

import time
from contextlib import contextmanager

import numpy as np

from .. import config
from ..cluster.step import Totals, check_distinct, farthest, next_centers, stage_name, take_over
from ..errors import DataError, FastsegError
from ..io.decode import REFERENCE_SEED
from ..io.store import Dataset, positions_within, sample_positions
from ..io.tables import TableReader
from ..preprocess.fit import fit_scaling
from ..preprocess.pca import component_variance, pca_from_scatter
from ..preprocess.settings import IMPUTING
from ..preprocess.stats import CategoryLevels, first_row_shift
from ..progress import report
from . import get_client, is_dask_frame, tasks
from .init import DaskCandidates
from .tasks import DECODED, FILLED, RAW, Fragment, Job


class FragmentPlan:
    """The input cut into fragments, and a way to run one task per fragment on the cluster.

    Parquet: rows [i·F, (i+1)·F) of the data set for F = ``config.FRAGMENT_ROWS`` (a fragment
    may span files; a task reads just its row groups), the local engine's fragments exactly.
    A Dask DataFrame: one fragment per partition (its rows are the partition's).
    """

    def __init__(self, X, client, batch_size, sample_weight=None):
        self.client, self.batch_size = client, batch_size
        if is_dask_frame(X):
            import dask

            self.source, self.schema_input = None, X._meta
            self.parts = X.to_delayed()
            counts = client.gather(client.compute([dask.delayed(len)(p) for p in self.parts]))
        else:
            self.source, self.schema_input, self.parts = X, X, None
            counts = _fragment_sizes(TableReader(X).count_rows())
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.fragments = [
            Fragment(i, int(a), int(b))
            for i, (a, b) in enumerate(zip(starts[:-1], starts[1:], strict=True))
        ]
        if starts[-1] == 0:
            raise DataError("the data has no rows")
        self.kept = None  # rows each fragment stores (after dropping), from the statistics pass
        self.positive = None  # ... of which of positive weight
        self.token = time.time_ns()  # this plan's: workers list the input's files again
        self.weight_column, weights = _weights(sample_weight, int(starts[-1]))
        if weights is not None:  # sent once, each fragment's slice to the workers
            weights = client.scatter([weights[f.start : f.stop] for f in self.fragments])
        self.weighted = sample_weight is not None
        self.inputs = list(
            zip(
                self.parts or [None] * len(self.fragments),
                weights or [None] * len(self.fragments),
                strict=True,
            )
        )

    def job(self, columns, missing, preprocessor):
        return Job(
            self.source,
            tuple(columns),
            missing,
            preprocessor,
            self.batch_size,
            self.token,
            self.weight_column,
        )

    def each(self, func, job, *args, data=None):
        """func(job, fragment, data_i, *args) for every fragment, results in fragment order;
        ``data``: per-fragment inputs (kept decoded rows), else each fragment's partition."""
        import dask

        data = data if data is not None else self.inputs
        call = dask.delayed(func, pure=True)
        jobs = [call(job, f, x, *args) for f, x in zip(self.fragments, data, strict=True)]
        return self.client.gather(self.client.compute(jobs))

    def positions(self, counts, size, seed):
        """Per fragment, the sorted positions (among its ``counts`` rows) of a uniform sample
        of ``size`` rows of them all: the positions the local engine's ``draw_sample`` picks."""
        positions = sample_positions(int(counts.sum()), size, seed)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        return [positions_within(positions, bounds[i], bounds[i + 1]) for i in range(len(counts))]

    def sample(self, job, size, seed, upto, every=False):
        """(rows, weights) of a uniform sample of the stored rows of positive weight (with
        ``every``: of all stored rows), in row order."""
        import dask

        eligible = self.weighted and not every
        wanted = self.positions(self.positive if eligible else self.kept, size, seed)
        call = dask.delayed(tasks.sample, pure=True)
        jobs = [
            call(job, f, x, at, upto, eligible)
            for f, x, at in zip(self.fragments, self.inputs, wanted, strict=True)
            if at.size
        ]
        found = self.client.gather(self.client.compute(jobs))
        return np.concatenate([r for r, _ in found]), np.concatenate([w for _, w in found])


def _weights(sample_weight, n_rows):
    """(the weight column's name, or None; the weights as an array, or None)."""
    if sample_weight is None or isinstance(sample_weight, str):
        return sample_weight, None
    w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if w.shape[0] != n_rows:
        raise DataError(f"sample_weight has {w.shape[0]} values for {n_rows} rows")
    return None, w


def _fragment_sizes(n_rows):
    f = config.FRAGMENT_ROWS
    return [min(f, n_rows - s) for s in range(0, n_rows, f)]


class Summary:
    """What the local engine's ``Dataset`` tells the fit, without the rows: merged statistics,
    the fitted preprocessing and the init sample."""

    n_dropped = n_imputed = 0
    dropped_rows = np.empty(0, dtype=np.int64)  # not gathered: the labels mark them -1
    impute_values = scale_mean = scale_std = pca = sample = sample_weights = None
    dtype = np.dtype(np.float32)
    weights = chunks = None
    reference = None  # the merged RowTap of the reference profile's sample
    candidates = None  # k-means||: the rows' side on the cluster (``distributed.init``)

    scaled_var = Dataset.scaled_var
    release_sample = Dataset.release_sample

    def init_rows(self):
        return self.sample, self.sample_weights


class Prepared:
    """A Dask fit after its decode passes: the plan, the job that decodes a fragment, the
    kept fragments (``persist``) and the ``Summary``, with the init sample drawn."""

    def __init__(self, plan, job, kept, data):
        self.plan, self.job, self.kept, self.data = plan, job, kept, data

    def each(self, func, *args):
        return self.plan.each(func, self.job, *args, data=self.kept)


@contextmanager
def prepared(engine, X, columns, client, persist, sample_weight=None):
    """Run the fit's passes up to the initialisation, as the local ``_decoded`` does; yield
    (``Prepared``, the fit's random stream)."""
    client = get_client(client)
    _check_supported(engine)
    random_state = engine._check_params()
    started = time.perf_counter()
    with engine._new_fit():
        engine.timings_ = {}
        if sample_weight is not None and engine.missing == "drop":
            raise DataError("sample_weight cannot be combined with dropping rows (missing='drop')")
        plan = FragmentPlan(X, client, engine._stream_rows(), sample_weight)
        columns = _features(engine, plan, columns)
        pre = engine._preprocessing()
        pre.resolve_log1p()
        data = _preprocess(engine, plan, columns, pre)
        job = plan.job(columns, engine.missing, pre)
        tasks.warm_kernels()  # here first: workers on this machine then only read the cache
        kept = _keep_decoded(plan, job) if persist else None
        engine.timings_["read"] = time.perf_counter() - started
        engine._remember_input(data)
        size = engine._sample_size()
        seed = None if size is None else random_state.randint(np.iinfo(np.int32).max)
        if isinstance(engine.init, str) and engine.init == "k-means||":  # all rows: no sample
            data.candidates = DaskCandidates(plan, job, kept, data.n_features)
        elif size is not None:
            # the local engine runs on every row (zero weights too) when they fit the sample
            every = data.n_rows <= size
            data.sample, data.sample_weights = plan.sample(job, size, seed, DECODED, every)
        yield Prepared(plan, job, kept, data), random_state


def fit_kmeans(engine, X, columns=None, *, client=None, persist=False, sample_weight=None):
    """Fit ``engine`` (a ``LloydEngine``) on a Dask DataFrame or Parquet path(s) on the
    cluster; ``sample_weight``: an array of a weight per input row, or a column's name."""
    with prepared(engine, X, columns, client, persist, sample_weight) as (fit, random_state):
        data = fit.data
        with engine._timed("init"):
            starts = [engine._init_centers(data, random_state) for _ in range(engine._n_starts())]
        data.release_sample()
        tol = engine.tol * float(np.mean(data.scaled_var()))
        best = None
        for run, centers in enumerate(starts):
            with engine._timed("iterations"):
                result = lloyd(fit, centers, engine, tol, run, len(starts))
            if best is None or result[1] < best[1]:
                best = result
        centers, inertia, n_iter, counts = best
        _set_fitted(engine, fit, centers, counts)
        engine.inertia_ = inertia
        engine.n_iter_ = n_iter
        engine._keep_reference(data.reference)
    return engine


def fit_minibatch(engine, X, columns=None, *, client=None, persist=False, sample_weight=None):
    """Fit ``engine`` (a ``MiniBatchEngine``) on the cluster: the local engine's mini-batches,
    chunk after chunk, each chunk's steps run by a task on the worker holding its rows (the
    engine's state and random stream travel with the task, a few kB)."""
    with prepared(engine, X, columns, client, persist, sample_weight) as (fit, random_state):
        data = fit.data
        engine._random_state = random_state
        with engine._timed("init"):
            engine._start(data, random_state)
        data.release_sample()
        with engine._timed("iterations"):
            engine._run_epochs(_ChunksOnWorkers(fit), random_state)
        centers = engine._centers
        if engine.compute_labels:
            with engine._timed("labels"):
                totals = _e_step(fit, centers)
            _set_fitted(engine, fit, centers, totals.weight_sums.astype(np.int64))
            engine.inertia_ = totals.inertia
        engine.cluster_centers_ = centers.astype(np.float32)
        engine._keep_reference(data.reference)
    return engine


def _set_fitted(engine, fit, centers, counts):
    check_distinct(counts, engine.n_clusters)
    engine.cluster_centers_ = centers.astype(np.float32)
    engine._n_features_out = engine.n_clusters
    engine.cluster_sizes_ = counts  # rows per centre (what labels_ would count)
    engine.labels_ = _lazy_labels(fit.plan, fit.job, centers)


class _ChunksOnWorkers:
    """What ``MiniBatchEngine._run_epochs`` needs of the data, its chunks' steps run on the
    workers: the stored rows [start, start + chunk_rows), pieces of the fragments it spans."""

    def __init__(self, fit):
        self.fit = fit
        self.n_rows, self.chunk_rows = fit.data.n_rows, fit.job.chunk_rows
        self.first = np.concatenate([[0], np.cumsum(fit.plan.kept)])
        self.scaled_var = fit.data.scaled_var
        self.dtype = fit.data.dtype

    def run_chunk(self, engine, run, start, random_state):
        """engine._run_chunk on the chunk at ``start``, on a worker; returns what it changed."""
        import dask

        plan, fit = self.fit.plan, self.fit
        data = fit.kept if fit.kept is not None else plan.inputs
        stop = min(start + self.chunk_rows, self.n_rows)
        pieces = []
        for i in range(np.searchsorted(self.first, start, side="right") - 1, len(plan.fragments)):
            lo, hi = max(start, self.first[i]), min(stop, self.first[i + 1])
            if lo >= stop:
                break
            if lo < hi:
                pieces.append((plan.fragments[i], data[i], int(lo - self.first[i]), int(hi - lo)))
        task = dask.delayed(tasks.minibatch_chunk, pure=True)(
            fit.job, pieces, engine, run, random_state
        )
        return plan.client.compute(task).result()


def _e_step(fit, centers):
    totals = Totals(*centers.shape)
    for sums, weights, stats in fit.each(tasks.lloyd_step, centers):
        totals.sums += sums
        totals.weight_sums += weights
        totals.stats += stats
    return totals


def _check_supported(engine):
    if getattr(engine, "algorithm", None) == "hamerly":
        raise FastsegError(
            "algorithm='hamerly' keeps per-row bounds, which Dask tasks do not: use 'lloyd' or "
            "'auto'"
        )


def _features(engine, plan, columns):
    """The feature columns, checked on the input's schema; categorical levels learned from
    every fragment (one-hot columns added)."""
    reader = TableReader(plan.schema_input, engine._derivations())
    if engine.categorical:
        categorical = list(engine.categorical)
        missing = [c for c in categorical if c not in reader.schema]
        if missing:
            raise DataError(f"no such categorical column(s): {', '.join(missing)}")
        job = plan.job([], engine.missing, engine._preprocessing())
        found = CategoryLevels(categorical)
        for part in plan.each(tasks.levels, job, categorical):
            found.merge(part)
        engine.categories_ = found.levels(reader.describe)
        if columns is None:
            columns = [c for c in reader.schema.names() if c not in categorical]
        columns = [c for c in columns if c not in categorical]
        columns += [name for name, _ in engine._preprocessing().one_hot()]
        reader = TableReader(plan.schema_input, engine._derivations())
    columns = reader.check_features(columns)
    engine.n_features_in_ = len(columns)
    engine.feature_names_in_ = np.asarray(columns, dtype=object)
    return columns


def _preprocess(engine, plan, columns, pre):
    """The preprocessing's statistics merged from every fragment, as the local decode pass
    computes them: moments (after filling), filling, scaling, PCA."""
    data = Summary()
    imputing = engine.missing in IMPUTING
    job = plan.job(columns, engine.missing, pre)
    parts = _statistics(plan, job, RAW, tap=True)
    data.reference = _merged(parts, "tap")
    plan.kept = np.array([p["rows"] for p in parts], dtype=np.int64)
    data.n_rows = int(plan.kept.sum())
    if data.n_rows < engine.n_clusters:
        raise DataError(f"n_samples={data.n_rows} should be >= n_clusters={engine.n_clusters}.")
    data.n_dropped = sum(p["dropped"] for p in parts)
    plan.positive = np.array([p["positive"] for p in parts], dtype=np.int64)
    _check_weights(parts)
    extremes = _merged(parts, "extremes")
    if imputing:
        present = _merged(parts, "present")
        sample = lambda: plan.sample(job, config.quantile_rows, 0, RAW)[0]  # noqa: E731
        pre.fill_values = present.fill_values(engine.missing, sample, columns)
        data.impute_values = pre.fill_values
        data.n_imputed = sum(p["imputed"] for p in parts)
        parts = _statistics(plan, plan.job(columns, engine.missing, pre), FILLED)
    moments = _merged(parts, "moments")
    data.mean, data.var = moments.mean, moments.var
    data.constant = np.flatnonzero(moments.var == 0)
    data.n_features = len(columns)
    if engine.scale != "none":
        filled = plan.job(columns, engine.missing, pre)
        sample = lambda: plan.sample(filled, config.quantile_rows, 0, FILLED)[0]  # noqa: E731
        unscaled = pre.one_hot_indices()
        centre, spread = fit_scaling(engine.scale, data, extremes, unscaled, columns, sample)
        centre[unscaled], spread[unscaled] = 0.0, 1.0
        data.scale_mean, data.scale_std = pre.centre, pre.spread = centre, spread
    if engine.pca is not None:
        _fit_pca(engine, plan, columns, pre, data)
    return data


def _check_weights(parts):
    """Weights as the local engine checks them: finite, non-negative, some positive."""
    if sum(p["bad_weights"] for p in parts):
        raise DataError("sample_weight must be finite and non-negative")
    if not sum(p["weight"] for p in parts) > 0:
        raise DataError("sample_weight sums to zero: at least one row needs a positive weight")


def _statistics(plan, job, upto, tap=False):
    """Every fragment's ``tasks.statistics``; with ``tap``, each also taps its input rows of
    the reference profile's sample (the positions the local decode pass taps)."""
    first = None
    for fragment, part in zip(plan.fragments, plan.inputs, strict=True):
        first = _first_row(plan, job, fragment, part, upto)
        if first is not None:
            break
    if first is None:
        raise DataError("no rows left in the data after dropping those with missing values")
    shift = first_row_shift(first[None, :])
    if not tap:
        return plan.each(tasks.statistics, job, shift, upto)
    n_input = plan.fragments[-1].stop
    positions = sample_positions(n_input, config.reference_rows, REFERENCE_SEED)
    import dask

    call = dask.delayed(tasks.statistics, pure=True)
    found = [
        call(job, f, x, shift, upto, positions_within(positions, f.start, f.stop))
        for f, x in zip(plan.fragments, plan.inputs, strict=True)
    ]
    return plan.client.gather(plan.client.compute(found))


def _first_row(plan, job, fragment, part, upto):
    import dask

    task = dask.delayed(tasks.first_row, pure=True)(job, fragment, part, upto)
    return plan.client.compute(task).result()


def _merged(parts, name):
    merged = parts[0][name]
    for part in parts[1:]:
        merged.merge(part[name])
    return merged


def _fit_pca(engine, plan, columns, pre, data):
    from ..preprocess.pca import scaled_mean

    job = plan.job(columns, engine.missing, pre)
    mean = scaled_mean(data)
    scatters = plan.each(tasks.covariance, job, mean)
    scatter = scatters[0]
    for part in scatters[1:]:
        scatter.merge(part)
    unweighted = not plan.weighted
    data.pca = pre.pca = pca_from_scatter(scatter, data.n_rows, unweighted, engine.pca)
    p = data.pca.components.shape[0]
    data.n_features = p
    data.mean = np.zeros(p)
    data.var = component_variance(data.pca, data.n_rows, unweighted)


def _keep_decoded(plan, job):
    """Decode every fragment once and keep it in the workers' memory (Dask spills it to disk
    under memory pressure, and decodes a lost one again)."""
    import dask

    parts = plan.inputs
    decoded = [
        dask.delayed(tasks.decode, pure=True)(job, f, p)
        for f, p in zip(plan.fragments, parts, strict=True)
    ]
    return plan.client.persist(decoded)


def lloyd(fit, centers, engine, tol, run=0, n_runs=1):
    """Lloyd iterations as ``cluster.lloyd.lloyd`` (unbounded) runs them, one task per fragment
    per pass; returns (centers, inertia, n_iter, rows per centre)."""
    k, d = centers.shape
    centers = centers.copy()
    previous = None
    strict, n_iter = False, 0
    for it in range(engine.max_iter):
        totals = _e_step(fit, centers)
        n_iter = it + 1
        if previous is not None and _same(previous, totals):
            strict = True  # the same labels as the last pass: the centres cannot move
            break
        previous = (totals.sums.copy(), totals.weight_sums.copy())
        if (totals.weight_sums == 0).any():
            _relocate(fit, centers, totals)
        new_centers = next_centers(totals.sums, totals.weight_sums, centers)
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if engine.verbose:
            print(f"Iteration {it}, inertia {totals.inertia}, centre shift {shift}")
        report(stage_name(run, n_runs), it + 1, engine.max_iter)
        if shift <= tol:
            break
    counts, inertia = np.zeros(k, dtype=np.int64), np.zeros(1)
    for part, found in fit.each(tasks.inertia, centers):
        inertia += part
        counts += found
    if engine.verbose:
        print("Converged at iteration", n_iter, "(strict)" if strict else "")
    report(stage_name(run, n_runs), engine.max_iter, engine.max_iter)
    return centers, float(inertia[0]), n_iter, counts


def _same(previous, totals):
    return np.array_equal(previous[0], totals.sums) and np.array_equal(
        previous[1], totals.weight_sums
    )


def _relocate(fit, centers, totals):
    """Move each empty cluster onto one of the rows farthest from their centre, as
    ``cluster.lloyd.relocate_empty_clusters`` does (the same rows, the same order)."""
    empty = np.flatnonzero(totals.weight_sums == 0)
    m = empty.size
    found = fit.each(tasks.farthest, centers, m)
    offsets = np.concatenate([[0], np.cumsum(fit.plan.kept)])
    dist = np.concatenate([f[0] for f in found])
    index = np.concatenate([offsets[i] + f[1] for i, f in enumerate(found)])
    rows = np.concatenate([f[2] for f in found])
    labels = np.concatenate([f[3] for f in found])
    weights = np.concatenate([f[4] for f in found])
    top = farthest(dist, index, m)
    take_over(empty, rows[top], weights[top], labels[top], totals.sums, totals.weight_sums)


def _lazy_labels(plan, job, centers):
    """The fit's labels as a lazy Dask Series (one task per fragment when computed)."""
    import dask
    import dask.dataframe as dd
    import pandas as pd

    parts = plan.inputs
    call = dask.delayed(_label_series, pure=True)
    pieces = [call(job, f, p, centers) for f, p in zip(plan.fragments, parts, strict=True)]
    return dd.from_delayed(pieces, meta=pd.Series(dtype=np.int32, name="segment"))


def _label_series(job, fragment, part, centers):
    import pandas as pd

    labels = tasks.labels(job, fragment, part, centers)
    return pd.Series(
        labels, index=pd.RangeIndex(fragment.start, fragment.start + labels.size), name="segment"
    )
