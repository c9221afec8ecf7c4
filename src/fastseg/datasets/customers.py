"""Synthetic customer table with hidden archetypes, for testing and benchmarking segmentation.

Customers are drawn from six hand-designed archetypes (the hidden ``true_segment``) whose
feature distributions overlap like real data but are separable enough that k-means on
standardised features recovers them. Rows are produced in fixed internal blocks whose random
streams depend only on ``(seed, block_index)``, so the content is identical whatever batch or
row-group size is used, and a 100M-row file never has to sit in memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import FastsegError
from ..io.output import atomic_output

__all__ = [
    "COLUMNS",
    "FEATURES",
    "GENDERS",
    "REGIONS",
    "SCHEMA",
    "SEGMENT_NAMES",
    "SEGMENT_SHARES",
    "generate_batch",
    "write_customers",
]

FEATURES = (
    "age",
    "income",
    "monthly_charge",
    "bandwidth_gb_year",
    "tenure_months",
    "spending_score",
    "purchase_frequency",
    "avg_order_value",
)
COLUMNS = ("customer_id",) + FEATURES + ("region", "gender", "true_segment")

REGIONS = ("north", "south", "east", "west", "central")
GENDERS = ("female", "male", "other")
NULLABLE = ("income", "monthly_charge", "tenure_months")

SCHEMA = pa.schema(
    [pa.field("customer_id", pa.int64())]
    + [pa.field(name, pa.float32()) for name in FEATURES]
    + [
        pa.field("region", pa.string()),
        pa.field("gender", pa.string()),
        pa.field("true_segment", pa.int8()),
    ]
)

# Rows per internal RNG block. Fixed forever: changing it changes every generated file.
_BLOCK = 65_536
# Dispersion of the gamma-Poisson (negative binomial) purchase counts; lower = more spread.
_PURCHASE_SHAPE = 4.0


# The six hidden archetypes; tuple position i is segment code i. Money is in USD; ``*_sigma``
# are log-space sds of lognormals; tenure is gamma(shape, mean / shape) in months, so a small
# shape skews towards brand-new customers; purchases are yearly counts.
SEGMENT_NAMES = (
    "young_budget_streamer",
    "affluent_professional",
    "family_heavy_user",
    "retiree",
    "high_value_loyal",
    "new_churn_risk",
)
SEGMENT_SHARES = (0.25, 0.20, 0.18, 0.15, 0.12, 0.10)
_PARAMS = {
    # (young, affluent, family, retiree, loyal, churn)
    "age_mean": (24, 38, 43, 71, 53, 31),
    "age_sd": (5, 7, 7, 7, 10, 10),
    "income_median": (28_000, 115_000, 72_000, 38_000, 150_000, 45_000),
    "income_sigma": (0.42, 0.36, 0.36, 0.42, 0.36, 0.48),
    "charge_mean": (35, 85, 135, 45, 160, 60),
    "charge_sd": (10, 14, 18, 12, 22, 18),
    "bandwidth_median": (1_400, 500, 2_800, 120, 1_000, 300),
    "bandwidth_sigma": (0.55, 0.60, 0.50, 0.65, 0.55, 0.70),
    "tenure_mean": (14, 50, 80, 150, 175, 4),
    "tenure_shape": (2.0, 3.0, 4.0, 6.0, 8.0, 1.5),
    "spend_mean": (45, 72, 58, 32, 88, 20),
    "spend_sd": (14, 12, 12, 12, 8, 10),
    "purchases_mean": (20, 32, 48, 8, 65, 4),
    "aov_median": (22, 110, 55, 48, 210, 35),
    "aov_sigma": (0.50, 0.50, 0.45, 0.50, 0.45, 0.55),
}
# Rows: segments; columns: REGIONS / GENDERS order. Urban "central" skews young, "south" old.
_REGION_P = (
    (0.15, 0.15, 0.20, 0.20, 0.30),
    (0.18, 0.12, 0.25, 0.20, 0.25),
    (0.22, 0.25, 0.18, 0.22, 0.13),
    (0.15, 0.35, 0.15, 0.25, 0.10),
    (0.20, 0.15, 0.25, 0.25, 0.15),
    (0.20, 0.20, 0.20, 0.20, 0.20),
)
_GENDER_P = (
    (0.47, 0.49, 0.04),
    (0.46, 0.52, 0.02),
    (0.55, 0.44, 0.01),
    (0.56, 0.43, 0.01),
    (0.48, 0.51, 0.01),
    (0.48, 0.48, 0.04),
)


def _cumulative(probabilities) -> np.ndarray:
    """Cumulative probabilities along the last axis, normalised so the last entry is exactly 1."""
    cum = np.cumsum(np.asarray(probabilities, dtype=np.float64), axis=-1)
    return cum / cum[..., -1:]


# Per-segment parameters in the form the sampler uses them (log medians, gamma scales), as
# float32 so per-row gathers and arithmetic move half the bytes of float64.
_P = {key: np.asarray(values, dtype=np.float64) for key, values in _PARAMS.items()}
_S = {
    key: np.asarray(values, dtype=np.float32)
    for key, values in {
        "age_mean": _P["age_mean"],
        "age_sd": _P["age_sd"],
        "log_income": np.log(_P["income_median"]),
        "income_sigma": _P["income_sigma"],
        "charge_mean": _P["charge_mean"],
        "charge_sd": _P["charge_sd"],
        "log_bandwidth": np.log(_P["bandwidth_median"]),
        "bandwidth_sigma": _P["bandwidth_sigma"],
        "tenure_shape": _P["tenure_shape"],
        "tenure_scale": _P["tenure_mean"] / _P["tenure_shape"],
        "spend_mean": _P["spend_mean"],
        "spend_sd": _P["spend_sd"],
        "purchase_scale": _P["purchases_mean"] / _PURCHASE_SHAPE,
        "log_aov": np.log(_P["aov_median"]),
        "aov_sigma": _P["aov_sigma"],
    }.items()
}
_SHARE_CUM = _cumulative(SEGMENT_SHARES).astype(np.float32)
_REGION_CUM = _cumulative(_REGION_P).astype(np.float32)
_GENDER_CUM = _cumulative(_GENDER_P).astype(np.float32)


def _segment_categorical(rng: np.random.Generator, cum: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Draw one category code (int8) per row from its segment's cumulative probabilities.

    Inverse-CDF by counting the thresholds below a uniform draw; looping over the handful of
    categories (not rows) keeps it vectorised, which ``Generator.choice`` cannot do for
    per-row probabilities.
    """
    u = rng.random(seg.size, dtype=np.float32)
    codes = np.zeros(seg.size, dtype=np.int8)
    for k in range(cum.shape[1] - 1):
        codes += u >= cum[:, k].take(seg)
    return codes


def _make_block(seed: int, block_index: int) -> dict[str, np.ndarray]:
    """Generate one full internal block of ``_BLOCK`` rows as float32 / int8 numpy arrays.

    The RNG depends only on ``(seed, block_index)``, which is what makes the output
    independent of batch and row-group sizes. The draw order is fixed and the null-mask
    uniforms are always drawn, so ``null_fraction`` never shifts the other values.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, block_index]))
    n = _BLOCK
    u = rng.random(n, dtype=np.float32)
    seg = np.searchsorted(_SHARE_CUM, u, side="right").clip(max=len(_SHARE_CUM) - 1)
    seg = seg.astype(np.int8)
    p = {key: values.take(seg) for key, values in _S.items()}
    z = rng.standard_normal((6, n), dtype=np.float32)

    age = np.clip(np.rint(p["age_mean"] + p["age_sd"] * z[0]), 18, 90)
    # Income rises with age within a segment (about 1.5% per year) around a lognormal median.
    age_effect = np.float32(0.015) * np.clip(age - p["age_mean"], -15, 15)
    income = np.rint(np.exp(p["log_income"] + p["income_sigma"] * z[1] + age_effect))

    log_bandwidth_dev = p["bandwidth_sigma"] * z[2]
    bandwidth = np.round(np.exp(p["log_bandwidth"] + log_bandwidth_dev), 1)
    # Heavier users pay a little more (bigger plans), bounded so the tail stays in bandwidth.
    charge = p["charge_mean"] + p["charge_sd"] * z[3] + 8 * np.clip(log_bandwidth_dev, -2, 2)
    charge = np.round(np.clip(charge, 5, 500), 2)

    gamma = rng.standard_gamma(p["tenure_shape"], dtype=np.float32)
    tenure = np.clip(np.rint(gamma * p["tenure_scale"]), 0, 240)

    spend = np.clip(np.rint(p["spend_mean"] + p["spend_sd"] * z[4]), 1, 100)

    # Gamma-Poisson mixture: overdispersed yearly purchase counts, as in real retail data.
    rate = rng.standard_gamma(_PURCHASE_SHAPE, n, dtype=np.float32) * p["purchase_scale"]
    purchases = rng.poisson(rate).astype(np.float32)

    aov = np.round(np.exp(p["log_aov"] + p["aov_sigma"] * z[5]), 2)

    block = {
        "age": age,
        "income": income,
        "monthly_charge": charge,
        "bandwidth_gb_year": bandwidth,
        "tenure_months": tenure,
        "spending_score": spend,
        "purchase_frequency": purchases,
        "avg_order_value": aov,
        "region": _segment_categorical(rng, _REGION_CUM, seg),
        "gender": _segment_categorical(rng, _GENDER_CUM, seg),
        "true_segment": seg,
    }
    null_u = rng.random((len(NULLABLE), n), dtype=np.float32)
    block.update({f"_null_{name}": null_u[i] for i, name in enumerate(NULLABLE)})
    return block


class _BlockCache:
    """Remembers the last generated block so consecutive batches that split a block share it."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.index = -1
        self.block: dict[str, np.ndarray] = {}

    def get(self, index: int) -> dict[str, np.ndarray]:
        """Return block ``index``, generating it unless it was the last one requested."""
        if index != self.index:
            self.block = _make_block(self.seed, index)
            self.index = index
        return self.block


def _build_table(cache: _BlockCache, start_id: int, n_rows: int, null_fraction: float) -> pa.Table:
    """Assemble rows ``start_id .. start_id + n_rows - 1`` from internal blocks into a table."""
    if n_rows == 0:
        return SCHEMA.empty_table()
    stop = start_id + n_rows
    pieces: list[dict[str, np.ndarray]] = []
    for b in range(start_id // _BLOCK, -(-stop // _BLOCK)):
        lo = max(start_id - b * _BLOCK, 0)
        hi = min(stop - b * _BLOCK, _BLOCK)
        block = cache.get(b)
        pieces.append({key: arr[lo:hi] for key, arr in block.items()})

    def column(key: str) -> np.ndarray:
        if len(pieces) == 1:
            return pieces[0][key]
        return np.concatenate([piece[key] for piece in pieces])

    arrays: list[pa.Array] = [pa.array(np.arange(start_id, stop, dtype=np.int64))]
    for name in FEATURES:
        mask = None
        if name in NULLABLE and null_fraction > 0:
            mask = column(f"_null_{name}") < null_fraction
        arrays.append(pa.array(column(name), type=pa.float32(), mask=mask))
    # (category names built here, not at import: pa.array of a list imports pandas, 0.15 s)
    arrays.append(pc.take(pa.array(REGIONS, type=pa.string()), pa.array(column("region"))))
    arrays.append(pc.take(pa.array(GENDERS, type=pa.string()), pa.array(column("gender"))))
    arrays.append(pa.array(column("true_segment"), type=pa.int8()))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _write_row_group(writer: pq.ParquetWriter, table: pa.Table) -> int:
    """Write ``table`` as exactly one row group (pyarrow would split above ~1M rows)."""
    writer.write_table(table, row_group_size=table.num_rows)
    return table.num_rows


def _check_common(seed: int, null_fraction: float) -> None:
    """Reject arguments that would silently produce nonsense."""
    if seed < 0:
        raise FastsegError(f"seed must be >= 0, got {seed}")
    if not 0.0 <= null_fraction <= 1.0:
        raise FastsegError(f"null_fraction must be between 0 and 1, got {null_fraction}")


def generate_batch(
    n_rows: int, *, seed: int = 0, start_id: int = 0, null_fraction: float = 0.002
) -> pa.Table:
    """One batch of synthetic customers, ids ``start_id .. start_id + n_rows - 1``.

    Row ``i`` is the same whatever batch it is generated in, so batches can be produced
    independently (or in parallel) and concatenated into the same table.

    Parameters
    ----------
    n_rows : int
        Number of rows (0 gives an empty table with the full schema).
    seed : int
        Non-negative master seed; all content is a pure function of it and the row id.
    start_id : int
        ``customer_id`` of the first row.
    null_fraction : float
        Probability that each of income, monthly_charge and tenure_months is null,
        independently, so downstream code is exercised on missing values.

    Returns
    -------
    pyarrow.Table
        Columns ``COLUMNS`` with schema ``SCHEMA``.
    """
    if n_rows < 0:
        raise FastsegError(f"n_rows must be >= 0, got {n_rows}")
    if start_id < 0:
        raise FastsegError(f"start_id must be >= 0, got {start_id}")
    _check_common(seed, null_fraction)
    return _build_table(_BlockCache(seed), start_id, n_rows, null_fraction)


def write_customers(
    path: str | os.PathLike[str],
    n_rows: int,
    *,
    seed: int = 0,
    row_group_size: int = 1_000_000,
    null_fraction: float = 0.002,
    on_progress: Callable[[int, int], None] | None = None,
    overwrite: bool = True,
) -> int:
    """Write ``n_rows`` synthetic customers to a Parquet file, one row group per batch.

    At most two row groups are in memory (one being compressed by a writer thread while the
    next is generated), so memory is bounded by ``row_group_size`` rather than ``n_rows``.
    The file is written to a temporary file in the same folder and moved into place with
    ``os.replace``, so readers never see a half-written file and an interrupted run
    (including Ctrl-C) leaves nothing behind.

    Parameters
    ----------
    path : str or os.PathLike
        Destination ``.parquet`` file; its folder must exist. Replaced if present.
    n_rows : int
        Number of rows, at least 1.
    seed : int
        Master seed; the content does not depend on ``row_group_size``.
    row_group_size : int
        Rows per Parquet row group (and per generated batch).
    null_fraction : float
        See `generate_batch`.
    on_progress : callable, optional
        Called as ``on_progress(rows_done, n_rows)`` after each row group.
    overwrite : bool
        Replace an existing file at ``path`` (else refuse with a FastsegError).

    Returns
    -------
    int
        Number of rows written.

    Raises
    ------
    FastsegError
        (a ``ValueError``) for bad arguments or a missing / unwritable folder.
    """
    if n_rows < 1:
        raise FastsegError(f"n_rows must be >= 1 to write a customer file, got {n_rows}")
    if row_group_size < 1:
        raise FastsegError(f"row_group_size must be >= 1, got {row_group_size}")
    _check_common(seed, null_fraction)

    written = 0

    def collect(future: Future[int]) -> None:
        nonlocal written
        written += future.result()
        if on_progress is not None:
            on_progress(written, n_rows)

    cache = _BlockCache(seed)
    pending: Future[int] | None = None
    # One writer thread compresses row group k while the main thread generates k + 1 (both
    # release the GIL), so at most two row groups are alive at once.
    with (
        atomic_output(path, overwrite=overwrite) as tmp_path,
        pq.ParquetWriter(tmp_path, SCHEMA, compression="zstd") as writer,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastseg-write") as pool,
    ):
        for start in range(0, n_rows, row_group_size):
            size = min(row_group_size, n_rows - start)
            table = _build_table(cache, start, size, null_fraction)
            if pending is not None:
                collect(pending)
            pending = pool.submit(_write_row_group, writer, table)
        collect(pending)
    return written
