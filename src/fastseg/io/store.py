"""The decoded store: rows decoded once, in RAM within the memory budget, else in a spill file.

The spill file is unlinked as soon as it is created, so it disappears with the process however
the process ends. ``Dataset`` is the store plus what the fit needs to know about its rows.
"""

import ctypes
import ctypes.util
import mmap
import tempfile
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from .. import config
from ..cluster import kernels
from ..errors import DataError
from ..preprocess.pca import PCA
from .output import said_if_disk_full


def anonymous_array(shape, dtype):
    """A zero-filled array in its own anonymous memory map.

    NumPy asks for transparent huge pages on large arrays; where the kernel then compacts
    memory on the first touch of each page (THP "madvise" mode, as on the test machine), filling
    a few hundred MB took 3-5x longer than in plain pages. Every caller fills its array, so
    its pages are mapped at once (``MAP_POPULATE``, Linux): 15 ms for 40 MB against 17-20 ms
    faulted in one page at a time. The map is private: a shared one (Python's default) took
    23 ms populated; under THP "always" a private map may get huge pages, as any array would.
    The map is freed with the array.
    """
    count = int(np.prod(shape))
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
    memory = mmap.mmap(-1, max(count * np.dtype(dtype).itemsize, 1), flags=flags)
    return np.frombuffer(memory, dtype=dtype, count=count).reshape(shape)


class RowStore:
    """Decoded rows: an array in RAM, or a spill file read back one chunk at a time."""

    def __init__(
        self, n_rows, n_features, dtype, *, in_memory, spill_dir=None, array=None, keep=True
    ):
        self.n_features = n_features
        self._keeps = keep  # False: ``fill`` only passes each chunk on (a Dask task's stream)
        self.dtype = np.dtype(dtype)
        self.n_rows = 0
        self._row_bytes = n_features * self.dtype.itemsize
        self._file, self._spill_dir = None, spill_dir
        if array is not None:
            self._data = array
            self.n_rows = array.shape[0]
        elif not keep:
            self._data = None
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
            self._spill(np.ascontiguousarray(rows, dtype=self.dtype).data)
        self.n_rows += rows.shape[0]

    def _spill(self, data):
        folder = self._spill_dir or tempfile.gettempdir()
        with said_if_disk_full(
            f"the spill file in '{folder}'",
            "free space there, choose another --spill-dir, or give a larger --memory-budget",
        ):
            self._file.write(data)

    def fill(self, column_batches, chunk_rows):
        """Store batches of columns row-major; yield (first row, rows) of each completed chunk.

        Columns are copied once, straight into the store (a RAM store's chunk is a view of it;
        a spilled one is written out after the caller has seen it). Chunks start at multiples
        of ``chunk_rows`` however the input was batched, so per-block sums over them do not
        depend on the batching.
        """
        streamed = self._file is not None or not self._keeps
        buffer = np.empty((chunk_rows, self.n_features), self.dtype) if streamed else None
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
            self._spill(chunk.data)
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
                self._spill(view.data)

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
    reference: object = None  # a RowTap of input rows for the reference profile, or None
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


def draw_sample(data, size, seed):
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
        return _distinct_sorted(rng.choice(n, size, replace=False), n)
    positions = _distinct_sorted(rng.integers(0, n, size), n)
    while positions.size < size:  # top up: a few rounds, each far smaller than the last
        extra = _distinct_sorted(rng.integers(0, n, size - positions.size), n)
        at = np.searchsorted(positions, extra)
        new = positions[np.minimum(at, positions.size - 1)] != extra
        positions = np.insert(positions, at[new], extra[new])
    return positions


def positions_within(positions, start, stop):
    """The sorted ``positions`` that fall in rows [start, stop), counted from ``start``: the
    rows of one batch that a sample drawn over the whole data picks."""
    lo, hi = np.searchsorted(positions, [start, stop])
    return positions[lo:hi] - start


def _distinct_sorted(values, n):
    """The distinct ``values`` (row numbers below ``n``) in order, as ``np.sort`` then dropping
    repeats would give them, in a quarter of its time (250,000 values: 0.7 or 3 ms against 11):
    by a mask over the rows where that costs no more memory than the values (n <= 4 x their
    count), else by stable sorts on 16-bit digits (NumPy radix-sorts those), lowest first."""
    if n <= 4 * values.size:
        mask = np.zeros(n, dtype=bool)
        mask[values] = True
        return np.flatnonzero(mask)
    for shift in range(0, max(int(n - 1).bit_length(), 1), 16):
        values = values[np.argsort((values >> shift).astype(np.uint16), kind="stable")]
    return values[np.concatenate([[True], values[1:] != values[:-1]])]
