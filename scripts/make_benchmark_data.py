"""Make (or check) the synthetic-customer Parquet files the benchmarks read.

    python scripts/make_benchmark_data.py                          # every size the full suite reads
    python scripts/make_benchmark_data.py --rows 1000000,10000000  # just these
    python scripts/make_benchmark_data.py --check                  # write nothing; exit 1 if any
                                                                   # file is missing or damaged

Why: every benchmark writes a missing ``benchmarks/data/customers_{rows}.parquet`` itself, in the
middle of its run (100M rows take minutes and 1.4 GB). Making them first keeps that out of the
benchmark's output and lets a fresh checkout, or a new machine, be prepared in one step.

The files are the benchmarks' own: ``compare.customers_path`` names and writes them
(``fastseg.datasets.write_customers(path, rows, seed=0)``), so the names and the seed cannot
drift apart. The 20,000-row file that ``end_to_end.py`` and ``spill.py`` warm up on is always
included. A file already there is checked (readable Parquet footer with the right row count) and
skipped; a damaged one is written again. No benchmark caches anything else: ``bench_kmeans.py``
makes its ``make_blobs`` array in memory, and ``compare.py`` keeps its standardised ``.npy`` in a
temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the benchmark scripts import each other the same way

import compare  # noqa: E402  (benchmarks/compare.py)
import cost_growth  # noqa: E402
import end_to_end  # noqa: E402
import spill  # noqa: E402


def suite_rows():
    """Every customer count ``run_benchmarks.sh`` reads: 1M and 10M (compare.py, end_to_end.py),
    cost_growth.py's two grids and spill.py's 100M (their defaults)."""
    growth = cost_growth.parse_args([])
    return sorted({1_000_000, 10_000_000, *growth.rows, growth.k_rows, spill.TARGET_ROWS})


def parquet_rows(path):
    """Rows in the Parquet file's footer, or None if it cannot be read."""
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(path).num_rows
    except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError
        return None


def prepare(rows, data_dir, check_only):
    """Check one file, writing it if it is missing or damaged (unless ``check_only``).

    Returns True when the file is there and good afterwards."""
    path = data_dir / f"customers_{rows}.parquet"
    found = parquet_rows(path) if path.exists() else None
    if found == rows:
        print(f"ok       {path} ({rows:,} rows, {path.stat().st_size / 2**20:,.1f} MB)")
        return True
    problem = "missing" if not path.exists() else f"damaged ({found} rows in its footer)"
    if check_only:
        print(f"{problem:8} {path}")
        return False
    path.unlink(missing_ok=True)
    start = time.perf_counter()
    compare.customers_path(rows, data_dir)  # prints "writing ..."
    print(f"wrote    {path} ({rows:,} rows, {path.stat().st_size / 2**20:,.1f} MB) in "
          f"{time.perf_counter() - start:.1f} s", flush=True)
    return parquet_rows(path) == rows


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=compare.int_list, default=None,
                   help="comma-separated customer counts (default: every size the full suite "
                        "reads); the 20,000-row warm-up file is always included")
    p.add_argument("--data-dir", type=Path, default=BENCHMARKS / "data",
                   help="where the benchmarks cache their data (default benchmarks/data)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if a file is missing or damaged")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    sizes = sorted({end_to_end.WARMUP_ROWS, *(args.rows or suite_rows())})
    good = [prepare(rows, args.data_dir, args.check) for rows in sizes]
    return 0 if all(good) else 1


if __name__ == "__main__":
    sys.exit(main())
