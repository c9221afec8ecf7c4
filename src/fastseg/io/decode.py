"""The decode pass: read the input once into the decoded store, fitting the preprocessing.

One streaming pass over the source checks that values are finite, takes the preprocessing's
mergeable statistics (``preprocess.fit``) and stores the rows for the later passes: in RAM
when they fit the memory budget, else in a spill file on local disk. A uniform sample of the
stored rows for initialisation is drawn afterwards.
"""

import time

import numpy as np

from .. import config
from ..errors import DataError
from ..preprocess.fit import PreprocessFit
from ..preprocess.settings import SCALINGS
from ..progress import report
from .sources import ArraySource, RowTap
from .store import (
    Dataset,
    RowStore,
    aligned_chunk_rows,
    draw_sample,
    hand_back_freed_memory,
    sample_positions,
)

REFERENCE_SEED = 0  # the reference sample's positions depend on the row count alone


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
    fill_values=None,
    reference_rows=None,
):
    """Run the decode pass over ``source`` and return a Dataset (close it when done).

    The preprocessing (``scale``, ``log1p``, ``unscaled``, ``pca``) is fitted on the way, as
    ``preprocess.fit.PreprocessFit`` describes; ``sample_size`` rows are then drawn for the
    initialisation (None: no sample). ``fill_values`` fills missing values with those of
    an earlier fit instead of learning them (``partial_fit`` after ``fit``).
    ``reference_rows``: tap a uniform sample of that many input rows, as read, for the
    model's reference profile (``Dataset.reference``, a ``RowTap``).
    """
    if scale not in SCALINGS:
        raise DataError(f"scale={scale!r}: use one of {', '.join(SCALINGS)}")
    batch_size = aligned_chunk_rows(batch_size or config.batch_size)
    budget = config.default_memory_budget() if memory_budget is None else int(memory_budget)
    n_max = source.count_rows()
    if n_max == 0:
        raise DataError(f"{getattr(source, 'describe', 'the data')} has no rows")
    weights = _check_weights(sample_weight, n_max, source)
    fit = PreprocessFit(
        source, scale=scale, log1p=log1p, unscaled=unscaled, pca=pca, fill_values=fill_values
    )
    # The sample's seed is drawn whether or not a sample is needed, so the random stream that
    # follows (k-means++) is the same in RAM and spilled.
    seed = None if sample_size is None else random_state.randint(np.iinfo(np.int32).max)
    tap = _tap(source, n_max, reference_rows)
    start = time.perf_counter()
    store = _read(source, weights, fit, n_max, batch_size, budget, spill_dir)
    data = Dataset(
        store=store,
        weights=weights,
        feature_names=source.feature_names,
        n_dropped=source.n_dropped,
        dropped_rows=source.dropped_rows,
        mean=None,
        var=None,
        chunk_rows=batch_size,
        reference=tap,
    )
    hand_back_freed_memory()
    read_done = time.perf_counter()
    data = fit.finish(data, spill_dir, budget)
    if sample_size is not None and (data.n_rows > sample_size or not data.store.in_memory):
        data.sample, data.sample_weights = draw_sample(data, sample_size, seed)
    data.timings = {"read": read_done - start, "preprocess": time.perf_counter() - read_done}
    return data


def _tap(source, n_rows, size):
    """The ``RowTap`` of a uniform sample of ``size`` input rows (None: no profile)."""
    if size is None:
        return None
    tap = RowTap(sample_positions(n_rows, size, REFERENCE_SEED), source.n_features)
    if isinstance(source, ArraySource):
        tap.take_array(source.X)
    else:
        source.tap = tap
    return tap


def _read(source, weights, fit, n_max, batch_size, budget, spill_dir):
    """Store every row of ``source``, each batch taken into ``fit`` in row order."""
    d, dtype = source.n_features, source.dtype
    if isinstance(source, ArraySource) and not fit.changes_rows:
        store = RowStore(n_max, d, dtype, in_memory=True, array=source.X)  # used in place
        chunks = store.chunks(batch_size)
    else:
        fits = n_max * d * dtype.itemsize <= budget
        store = RowStore(n_max, d, dtype, in_memory=fits, spill_dir=spill_dir)
        chunks = store.fill(source.column_batches(batch_size), batch_size)
    try:
        row = 0  # rows read so far
        for first, batch in chunks:
            fit.update(batch, None if weights is None else weights[first : first + batch.shape[0]])
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
    return store


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
