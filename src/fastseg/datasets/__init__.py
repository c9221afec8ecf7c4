"""Synthetic data sets: customers with hidden true segments, for tests, demos and benchmarks."""

from .customers import (
    COLUMNS,
    FEATURES,
    GENDERS,
    REGIONS,
    SCHEMA,
    SEGMENT_NAMES,
    SEGMENT_SHARES,
    generate_batch,
    write_customers,
)

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
