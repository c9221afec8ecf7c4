"""The decode pass: read the input once into a float cache, with what later passes need.

One streaming pass over the source checks that values are finite, accumulates weighted means and
variances in float64 (for scaling and for ``tol``), and stores the rows for the Lloyd passes: in
RAM when they fit the memory budget, else in a spill file on local disk. A uniform sample of the
stored rows for initialisation is drawn afterwards. The spill file is unlinked as soon as it
is created, so it disappears with the process however the process ends.
"""

import ctypes
import ctypes.util
import mmap
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from .. import config
from ..cluster import kernels
from ..errors import DataError
from ..preprocess.pca import PCA, fit_pca
from ..preprocess.scaling import standardize
from ..preprocess.settings import IMPUTING, SCALINGS
from ..preprocess.stats import MinMax, Moments, PresentValues
from ..progress import report
from .sources import ArraySource

QUANTILE_ROWS = 1_000_000  # robust scaling: quantiles of a uniform sample of this many rows


def anonymous_array(shape, dtype):
    """A zero-filled array in its own anonymous memory map.

    NumPy asks for transparent huge pages on large arrays; where the kernel then compacts
    memory on the first touch of each page (THP "madvise" mode, as on the test machine), filling
    a few hundred MB took 3-5x longer than in plain pages. The map is freed with the array.
    """
    count = int(np.prod(shape))
    memory = mmap.mmap(-1, max(count * np.dtype(dtype).itemsize, 1))
    return np.frombuffer(memory, dtype=dtype, count=count).reshape(shape)


class RowStore:
    """Decoded rows: an array in RAM, or a spill file read back one chunk at a time."""

    def __init__(self, n_rows, n_features, dtype, *, in_memory, spill_dir=None, array=None):
        self.n_features = n_features
        self.dtype = np.dtype(dtype)
        self.n_rows = 0
        self._row_bytes = n_features * self.dtype.itemsize
        self._file = None
        if array is not None:
            self._data = array
            self.n_rows = array.shape[0]
        elif in_memory:
            self._data = anonymous_array((n_rows, n_features), self.dtype)
        else:
            self._data = None
            self._file = tempfile.TemporaryFile(prefix="fastseg-spill-", dir=spill_dir)

    @property
    def in_memory(self):
        return self._file is None

    def append(self, rows):
        """Store the next rows (a RAM store's rows in place; a spilled store's at the end)."""
        if self._file is None:
            self._data[self.n_rows : self.n_rows + rows.shape[0]] = rows
        else:
            self._file.write(np.ascontiguousarray(rows, dtype=self.dtype).data)
        self.n_rows += rows.shape[0]

    def fill(self, column_batches, chunk_rows):
        """Store batches of columns row-major; yield (first row, rows) of each completed chunk.

        Columns are copied once, straight into the store (a RAM store's chunk is a view of it;
        a spilled one is written out after the caller has seen it). Chunks start at multiples
        of ``chunk_rows`` however the input was batched, so per-block sums over them do not
        depend on the batching.
        """
        buffer = None if self._file is None else np.empty((chunk_rows, self.n_features), self.dtype)
        filled = 0
        for columns in column_batches:
            m, taken = columns[0].shape[0], 0
            while taken < m:
                if filled == 0:
                    chunk = buffer if buffer is not None else self._data[self.n_rows :][:chunk_rows]
                n = min(chunk_rows - filled, m - taken)
                for j, column in enumerate(columns):
                    kernels.copy_column(column[taken : taken + n], chunk[filled : filled + n], j)
                filled, taken = filled + n, taken + n
                if filled == chunk_rows:
                    yield from self._keep(chunk)
                    filled = 0
        if filled:
            yield from self._keep(chunk[:filled])

    def _keep(self, chunk):
        yield self.n_rows, chunk
        if self._file is not None:
            self._file.write(chunk.data)
        self.n_rows += chunk.shape[0]

    def array(self):
        """All rows as one array (RAM stores only)."""
        return self._data[: self.n_rows]

    def chunks(self, chunk_rows, writable=False, first_row=0):
        """Yield (first row, rows) chunk by chunk; spilled rows come through one reused buffer.

        With ``writable``, changes made to a spilled chunk are written back after the step.
        """
        if self._file is None:
            data = self.array()
            for start in range(first_row, self.n_rows, chunk_rows):
                yield start, data[start : start + chunk_rows]
            return
        buffer = np.empty((min(chunk_rows, self.n_rows), self.n_features), dtype=self.dtype)
        for start in range(first_row, self.n_rows, chunk_rows):
            m = min(chunk_rows, self.n_rows - start)
            view = buffer[:m]
            self._file.seek(start * self._row_bytes)
            if self._file.readinto(view.data.cast("B")) != m * self._row_bytes:
                raise DataError("the spill file was cut short: is the spill disk full?")
            yield start, view
            if writable:
                self._file.seek(start * self._row_bytes)
                self._file.write(view.data)

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None
        self._data = None


@dataclass
class Dataset:
    """Rows decoded once, plus everything the fit needs to know about them."""

    store: RowStore
    weights: np.ndarray | None  # float64 (n,) or None for unit weights
    feature_names: list | None
    n_dropped: int
    dropped_rows: np.ndarray  # positions of the dropped rows in the input, in order
    mean: np.ndarray  # weighted mean of each feature, original units
    var: np.ndarray  # weighted variance of each feature, original units
    scale_mean: np.ndarray | None = None  # scaling applied to the stored rows
    scale_std: np.ndarray | None = None
    sample: np.ndarray | None = None  # uniform sample of stored rows (init), or None = all
    sample_weights: np.ndarray | None = None
    impute_values: np.ndarray | None = None  # what missing values were filled with, per feature
    pca: PCA | None = None  # the rows are principal components of the scaled features
    n_imputed: int = 0
    constant: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    chunk_rows: int = config.BLOCK_ROWS
    timings: dict = field(default_factory=dict)  # seconds: "read", "preprocess"
    _ones: np.ndarray = field(default=None, repr=False)

    @property
    def n_rows(self):
        return self.store.n_rows

    @property
    def n_features(self):
        return self.store.n_features

    @property
    def dtype(self):
        return self.store.dtype

    def chunks(self, first_row=0):
        """Yield (first row, rows, weights) over the data in block-aligned chunks."""
        if self._ones is None and self.weights is None:
            self._ones = np.ones(self.chunk_rows, dtype=np.float64)
        for start, rows in self.store.chunks(self.chunk_rows, first_row=first_row):
            m = rows.shape[0]
            w = self._ones[:m] if self.weights is None else self.weights[start : start + m]
            yield start, rows, w

    def chunk_at(self, first_row):
        """The one chunk that starts at ``first_row``: (rows, weights)."""
        _, rows, w = next(self.chunks(first_row))
        return rows, w

    def scaled_var(self):
        """Variance of each feature as stored (after scaling): what ``tol`` is relative to."""
        if self.scale_std is None or self.pca is not None:  # PCA: var is the stored variance
            return self.var
        return self.var / self.scale_std**2

    def init_rows(self):
        """Rows and weights k-means++ runs on: the sample, or every row when none was drawn."""
        if self.sample is not None:
            return self.sample, self.sample_weights
        w = self.weights if self.weights is not None else np.ones(self.n_rows)
        return self.store.array(), w

    def release_sample(self):
        """Free the init sample once every start is chosen (32 MB at the default size)."""
        self.sample = self.sample_weights = None

    def close(self):
        self.store.close()


def aligned_chunk_rows(batch_size):
    """Batch size rounded up to whole reduction blocks."""
    blocks = max(1, -(-int(batch_size) // config.BLOCK_ROWS))
    return blocks * config.BLOCK_ROWS


def load_dataset(
    source,
    sample_weight=None,
    *,
    scale="none",
    log1p=(),
    unscaled=(),
    pca=None,
    batch_size=None,
    memory_budget=None,
    spill_dir=None,
    sample_size=None,
    random_state=None,
):
    """Run the decode pass over ``source`` and return a Dataset (close it when done).

    ``log1p`` (feature indices) takes log(1 + x) of those columns first; ``scale`` then maps
    every feature to ``(x - centre) / spread``: mean and standard deviation ("standard"),
    minimum and range ("minmax"), or median and interquartile range ("robust", from a uniform
    sample of ``QUANTILE_ROWS`` rows: exact below it), except the ``unscaled`` ones (one-hot
    columns keep their values). ``pca`` (a number of components, or
    the share of variance to keep) then replaces the rows by their principal components.
    """
    if scale not in SCALINGS:
        raise DataError(f"scale={scale!r}: use one of {', '.join(SCALINGS)}")
    batch_size = aligned_chunk_rows(batch_size or config.batch_size)
    budget = config.default_memory_budget() if memory_budget is None else int(memory_budget)
    n_max = source.count_rows()
    if n_max == 0:
        raise DataError(f"{getattr(source, 'describe', 'the data')} has no rows")
    weights = _check_weights(sample_weight, n_max, source)

    log1p = list(log1p)
    reuse_array = isinstance(source, ArraySource) and scale == "none" and not log1p
    if reuse_array:
        store = RowStore(n_max, source.n_features, source.dtype, in_memory=True, array=source.X)
    else:
        fits = n_max * source.n_features * source.dtype.itemsize <= budget
        store = RowStore(
            n_max, source.n_features, source.dtype, in_memory=fits, spill_dir=spill_dir
        )
    # The sample's seed is drawn whether or not a sample is needed, so the random stream that
    # follows (k-means++) is the same in RAM and spilled.
    seed = None if sample_size is None else random_state.randint(np.iinfo(np.int32).max)
    moments = Moments(source.n_features)
    extremes = MinMax(source.n_features)
    imputing = getattr(source, "missing", None) in IMPUTING
    present = PresentValues(source.n_features)  # imputing: sums and counts of non-NaN values
    start = time.perf_counter()
    try:
        if reuse_array:
            chunks = store.chunks(batch_size)
        else:
            chunks = store.fill(source.column_batches(batch_size), batch_size)
        row = 0  # rows read so far
        for first, batch in chunks:
            w = None if weights is None else weights[first : first + batch.shape[0]]
            if log1p:
                _log1p_in_place(batch, log1p, source)
            if imputing:  # NaN marks a value to fill; the moments come after the filling
                present.update(batch)
            elif moments.update(batch, w):
                _report_not_finite(batch, source)
            if scale == "minmax":
                extremes.update(batch)
            row = first + batch.shape[0]
            report("reading", row + source.n_dropped, n_max)
        if row == 0:
            raise DataError(
                f"no rows left in {getattr(source, 'describe', 'the data')} "
                f"after dropping {source.n_dropped} with missing values"
            )
    except BaseException:
        store.close()
        raise

    data = Dataset(
        store=store,
        weights=weights,
        feature_names=source.feature_names,
        n_dropped=source.n_dropped,
        dropped_rows=source.dropped_rows,
        mean=None,
        var=None,
        chunk_rows=batch_size,
    )
    hand_back_freed_memory()
    read_done = time.perf_counter()
    if imputing:
        sample = lambda: _draw_sample(data, QUANTILE_ROWS, 0)[0]  # noqa: E731 (medians only)
        values = present.fill_values(source.missing, sample, source.feature_names)
        _fill_missing(data, values, moments)
        data.n_imputed = source.n_imputed
    data.mean, data.var = moments.mean, moments.var
    data.constant = np.flatnonzero(moments.var == 0)
    if scale != "none":
        data.scale_mean, data.scale_std = _fit_scaling(scale, data, extremes)
        data.scale_mean[list(unscaled)], data.scale_std[list(unscaled)] = 0.0, 1.0  # one-hot
        _scale_in_place(store, batch_size, data.scale_mean, data.scale_std)
    if pca is not None:
        data = _project(data, pca, spill_dir, budget)
    if sample_size is not None and (data.n_rows > sample_size or not data.store.in_memory):
        data.sample, data.sample_weights = _draw_sample(data, sample_size, seed)
    data.timings = {"read": read_done - start, "preprocess": time.perf_counter() - read_done}
    return data


def _fill_missing(data, values, moments):
    """Fill the NaN the decode pass left for missing values; the moments come from this pass."""
    data.impute_values = values
    for chunk, w in _writable_chunks(data):
        holes = np.isnan(chunk)
        if holes.any():
            chunk[holes] = np.broadcast_to(values, chunk.shape)[holes]
        moments.update(chunk, w)


def _writable_chunks(data):
    for first, chunk in data.store.chunks(data.chunk_rows, writable=True):
        w = None if data.weights is None else data.weights[first : first + chunk.shape[0]]
        yield chunk, w


def _fit_scaling(scale, data, extremes):
    """(centre, spread) of each feature for ``scale``; a constant feature's spread is 1."""
    if scale == "standard":
        centre, spread = data.mean, np.sqrt(data.var)
    elif scale == "minmax":
        low, high = extremes.low, extremes.high
        centre, spread = low.astype(np.float64), (high - low).astype(np.float64)
    else:
        rows = _draw_sample(data, QUANTILE_ROWS, 0)[0].astype(np.float64)
        q25, centre, q75 = np.quantile(rows, [0.25, 0.5, 0.75], axis=0)
        spread = q75 - q25
    spread[spread == 0] = 1.0  # a constant column stays constant, as in scikit-learn
    return np.array(centre, dtype=np.float64), spread  # a copy: callers change it


_LIBC = ctypes.CDLL(ctypes.util.find_library("c"))


def hand_back_freed_memory():
    """Return the decode pass's freed buffers to the system before the rest of the fit.

    Arrow's allocator keeps freed decode buffers for reuse, and glibc keeps freed batch
    arrays in its heap (about 45 and 25 MB on the 10M-row benchmark file): left there, they
    count in the fit's peak RSS.
    """
    pa.default_memory_pool().release_unused()
    if hasattr(_LIBC, "malloc_trim"):  # glibc only
        _LIBC.malloc_trim(0)


def _check_weights(sample_weight, n_rows, source):
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if w.shape[0] != n_rows:
        raise DataError(f"sample_weight has {w.shape[0]} values for {n_rows} rows")
    if getattr(source, "missing", "error") == "drop":
        raise DataError("sample_weight cannot be combined with dropping rows (missing='drop')")
    if not np.isfinite(w).all() or (w < 0).any():
        raise DataError("sample_weight must be finite and non-negative")
    if w.sum() <= 0:
        raise DataError("sample_weight sums to zero: at least one row needs a positive weight")
    return w


def _project(data, keep, spill_dir, budget):
    """The dataset with its rows replaced by their first principal components."""
    pca = fit_pca(data, keep)
    p = pca.components.shape[0]
    n, dtype = data.n_rows, data.dtype
    store = RowStore(n, p, dtype, in_memory=n * p * dtype.itemsize <= budget, spill_dir=spill_dir)
    try:
        for _, rows, _ in data.chunks():
            store.append(pca.transform(rows))
    except BaseException:
        store.close()
        raise
    data.store.close()
    data.store, data.pca = store, pca
    data.mean = np.zeros(p)
    data.var = pca.explained_variance.copy()  # what tol is relative to
    if data.weights is None and n > 1:
        data.var *= (n - 1) / n  # the population variance, as for the features
    return data


def _log1p_in_place(batch, columns, source):
    for j in columns:
        column = batch[:, j]
        if (column <= -1).any():
            name = source.feature_names[j] if source.feature_names else f"feature {j}"
            raise DataError(
                f"log1p needs values above -1, and column '{name}' has {column.min():g}: "
                "leave it out of log1p or shift it first"
            )
        np.log1p(column, out=column)


def _report_not_finite(batch, source):
    bad = int(np.flatnonzero(~np.isfinite(batch).all(axis=0))[0])
    name = source.feature_names[bad] if source.feature_names else f"feature {bad}"
    raise DataError(
        f"column '{name}' holds NaN or infinite values; remove or replace them before clustering"
    )


def _scale_in_place(store, chunk_rows, mean, std):
    for _, rows in store.chunks(chunk_rows, writable=True):
        standardize(rows, mean, std)


def _draw_sample(data, size, seed):
    """A uniform sample of ``size`` stored rows (rows of zero weight excluded), in row order.

    Drawn after the decode pass, when the row count is known, from stored (scaled) rows, so RAM
    and spilled data give the same sample; spilled rows are picked up in one read of the file.
    """
    eligible = None if data.weights is None else np.flatnonzero(data.weights > 0)
    n = data.n_rows if eligible is None else eligible.size
    positions = sample_positions(n, size, seed)
    if eligible is not None:
        positions = eligible[positions]
    if data.store.in_memory:
        rows = data.store.array()[positions]
    else:
        rows = np.empty((positions.size, data.n_features), dtype=data.dtype)
        for start, chunk in data.store.chunks(data.chunk_rows):
            lo, hi = np.searchsorted(positions, [start, start + chunk.shape[0]])
            rows[lo:hi] = chunk[positions[lo:hi] - start]
    w = np.ones(positions.size) if data.weights is None else data.weights[positions]
    return rows, w


def sample_positions(n, size, seed):
    """Sorted positions of ``min(size, n)`` distinct rows out of n, uniformly at random.

    Memory is O(size) however large n is: distinct random integers are drawn until there are
    enough (any rule blind to which row is which gives a uniform sample).
    """
    rng = np.random.default_rng(seed)
    if n <= size:
        return np.arange(n)
    if n <= 4 * size:
        return np.sort(rng.choice(n, size, replace=False))
    positions = _distinct_sorted(rng.integers(0, n, size))
    while positions.size < size:  # top up: a few rounds, each far smaller than the last
        extra = _distinct_sorted(rng.integers(0, n, size - positions.size))
        at = np.searchsorted(positions, extra)
        new = positions[np.minimum(at, positions.size - 1)] != extra
        positions = np.insert(positions, at[new], extra[new])
    return positions


def _distinct_sorted(values):
    values = np.sort(values)
    return values[np.concatenate([[True], values[1:] != values[:-1]])]
