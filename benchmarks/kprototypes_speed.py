"""fastseg.KPrototypes against the kmodes package's KPrototypes: seconds for one fit, and cost.

    python benchmarks/kprototypes_speed.py                 # 20,000 customers, k = 6
    python benchmarks/kprototypes_speed.py --rows 5000 --seeds 3

Data: ``write_customers(path, rows, seed=3)``, rows with a missing value dropped (kmodes takes
no NaN); numbers as given (no scaling), 8 numeric columns and ``region``, ``gender`` as
categories. kmodes: ``KPrototypes(k, n_init=1, random_state=s)`` with its default init (Cao),
fitted on the NumPy object array it expects (made before timing). fastseg:
``KPrototypes(k, random_state=s)`` fitted on the polars frame (decoding included), after one
untimed warm-up fit (Numba's compilation or cache load); the median of 3 timed fits, with all
threads and with one. Both use kmodes' default gamma (0.5 x the mean std of the numbers).
Ratios come from the same run, so they hold on a shared machine; nothing asserts on time.
Output: the table, also in ``benchmarks/results/kprototypes_speed-YYYYmmdd-HHMMSS.json``
(``--out`` for another folder).
"""

import argparse
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
from kmodes.kprototypes import KPrototypes as KModesKPrototypes
from results_file import add_out_option, write_results

from fastseg.cluster.kprototypes import KPrototypes
from fastseg.datasets import FEATURES, write_customers

CATEGORICAL = ["region", "gender"]


def customers(rows):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "customers.parquet"
        write_customers(path, rows, seed=3)
        return pl.read_parquet(path).select([*FEATURES, *CATEGORICAL]).drop_nulls()


def fit_kmodes(frame, k, seed):
    X = frame.to_pandas().to_numpy(dtype=object)
    categorical = [frame.columns.index(c) for c in CATEGORICAL]
    start = time.perf_counter()
    model = KModesKPrototypes(k, n_init=1, random_state=seed).fit(X, categorical=categorical)
    return time.perf_counter() - start, model.cost_, model.n_iter_


def fit_fastseg(frame, k, seed, n_threads=None, repeats=3):
    def once():
        start = time.perf_counter()
        model = KPrototypes(k, random_state=seed, n_threads=n_threads).fit(
            frame, categorical=CATEGORICAL
        )
        return time.perf_counter() - start, model.cost_, model.n_iter_

    once()  # warm-up: Numba compiles or loads its cache
    runs = [once() for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), runs[0][1], runs[0][2]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 (kmodes: 20 s each)")
    add_out_option(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    stamp = datetime.now()
    frame = customers(args.rows)
    print(f"{frame.height:,} customers (of {args.rows:,}; rows with nulls dropped), k={args.k}")
    print(
        "seed  kmodes s  fastseg s  1 thread s  speed-up (1 thread)  kmodes cost  fastseg cost"
        "  ratio"
    )
    costs, seeds = [], []
    for seed in range(args.seeds):
        km_s, km_cost, _ = fit_kmodes(frame, args.k, seed)
        fs_s, fs_cost, _ = fit_fastseg(frame, args.k, seed)
        one_s, _, _ = fit_fastseg(frame, args.k, seed, n_threads=1)
        costs.append((km_cost, fs_cost))
        seeds.append(
            {
                "seed": seed,
                "kmodes_seconds": km_s,
                "fastseg_seconds": fs_s,
                "fastseg_1_thread_seconds": one_s,
                "speed_up": km_s / fs_s,
                "speed_up_1_thread": km_s / one_s,
                "kmodes_cost": float(km_cost),
                "fastseg_cost": float(fs_cost),
                "cost_ratio": float(fs_cost / km_cost),
            }
        )
        print(
            f"{seed:4}  {km_s:8.2f}  {fs_s:9.3f}  {one_s:10.3f}  {km_s / fs_s:7.0f}x "
            f"({km_s / one_s:4.0f}x)  {km_cost:11.5e}  {fs_cost:12.5e}  {fs_cost / km_cost:.6f}"
        )
    mean_km, mean_fs = (float(np.mean(c)) for c in zip(*costs, strict=True))
    print(f"mean cost over {args.seeds} seed(s): fastseg / kmodes = {mean_fs / mean_km:.6f}")
    figures = {"customers": frame.height, "seeds": seeds, "mean_cost_ratio": mean_fs / mean_km}
    write_results(args, "kprototypes_speed", stamp, figures)


if __name__ == "__main__":
    main()
