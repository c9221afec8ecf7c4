"""Every tunable of fastseg in one place (and a way back to the defaults)."""

import os

# fastmath flags shared by every kernel. Never "nnan"/"ninf": data may hold them until validated.
# "reassoc" lets LLVM vectorise the distance sums (2x here); the order it picks is fixed at compile
# time and the same for every block, so results still do not depend on threads or batch size.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
# The same without "reassoc", for sums whose order must not depend on how LLVM compiled the loop
# (a reordered inertia sum once differed in its last bits between two otherwise equal fits).
FASTMATH_ORDERED = FASTMATH - {"reassoc"}

# Rows per reduction block. Partial sums are kept per block of this many rows, at fixed positions
# in the data, and reduced in block order: the result does not depend on threads or batch size.
BLOCK_ROWS = 4096

# Rows per fragment: the unit a Dask task reads, and the second level of every sum. Block partials
# are added into a fragment's partial, and fragment partials into the total, in order, on one
# machine as on a cluster: so the model does not depend on the number of workers either.
FRAGMENT_ROWS = 256 * BLOCK_ROWS  # 1,048,576

# Rows searched together for their nearest centre: copied feature-major into a small float64 tile
# (d x TILE_ROWS, in L1 cache) so the distance loops run across rows, in SIMD registers.
TILE_ROWS = 128

_DEFAULTS = {
    # Rows per streamed batch (rounded up to a multiple of BLOCK_ROWS inside the engine).
    "batch_size": 1 << 18,
    # Labels renumbered or counted this many at a time (whole-array temporaries would cost
    # 8 bytes a row).
    "label_chunk_rows": 1 << 20,
    # A categorical column with more distinct values than this is an id, not a category.
    "max_category_levels": 100,
    # The profile breaks down text columns with at most this many values (more: an id).
    "profile_max_categories": 50,
    # A feature sets a segment apart when its mean is this many stds from the population's.
    "notable_z": 0.5,
    # Points in the report's PCA scatter, shared between segments by size.
    "report_scatter_points": 4000,
    # Share of physical memory the decoded float cache may take before it spills to disk.
    "memory_fraction": 0.5,
    # Rows of the uniform sample k-means++ runs on when the data is larger.
    "init_size": 1_000_000,
    # Rows of the uniform sample robust scaling's quantiles and median filling come from
    # (exact below it).
    "quantile_rows": 1_000_000,
    # Most bytes the per-block partial sums of one kernel call may take (large k × d).
    "accumulator_bytes": 32 << 20,
    # With Hamerly bounds, Lloyd updates the centre sums with the rows that changed centre and
    # recounts them over every row this often (iterations), so rounding cannot build up.
    "exact_sums_every": 10,
    # While more than this share of rows changed centre in the last pass, Hamerly searches every
    # row instead of testing its bounds (the tests would fail for most rows anyway).
    "busy_fraction": 0.05,
    # Input rows of the uniform sample a fit keeps its reference profile from (drift's
    # quantiles, decile bins, distance quantiles; exact below it), and drift's sample of new data.
    "reference_rows": 250_000,
    # Rows per partition when drift matches customers by id (the join holds one at a time).
    "migration_partition_rows": 1 << 20,
    # select-k: a k whose fits on two subsamples agree at least this much (adjusted Rand
    # index) is stable; --k auto takes the knee only when it is.
    "stable_ari": 0.75,
}

batch_size = _DEFAULTS["batch_size"]
memory_fraction = _DEFAULTS["memory_fraction"]
init_size = _DEFAULTS["init_size"]
quantile_rows = _DEFAULTS["quantile_rows"]
label_chunk_rows = _DEFAULTS["label_chunk_rows"]
max_category_levels = _DEFAULTS["max_category_levels"]
profile_max_categories = _DEFAULTS["profile_max_categories"]
notable_z = _DEFAULTS["notable_z"]
report_scatter_points = _DEFAULTS["report_scatter_points"]
accumulator_bytes = _DEFAULTS["accumulator_bytes"]
exact_sums_every = _DEFAULTS["exact_sums_every"]
busy_fraction = _DEFAULTS["busy_fraction"]
reference_rows = _DEFAULTS["reference_rows"]
migration_partition_rows = _DEFAULTS["migration_partition_rows"]
stable_ari = _DEFAULTS["stable_ari"]


def reset():
    """Restore every tunable to its default."""
    globals().update(_DEFAULTS)


def physical_memory():
    """Bytes of physical memory on this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def default_memory_budget():
    """Bytes the decoded data may take in RAM when the user sets no budget."""
    return int(physical_memory() * memory_fraction)
