"""One customer at a time: ``model.assign(record)`` against scikit-learn's ``KMeans.predict``
on one already-scaled row, in the same run.

    python benchmarks/assign_speed.py              # 10,000 records, 5 rounds
    python benchmarks/assign_speed.py --records 2000 --rounds 3

The model: ``fastseg.KMeans(6, scale="standard", missing="median", categorical=["region"])``
on the 8 numeric features and the region of 200,000 generated customers (seed 5). The records
are rows of another generated table (seed 6) as dicts of raw values, as a signup form or an
HTTP request gives them; ``assign`` validates them, replays the preprocessing and explains
its answer. scikit-learn gets the rows already scaled (its own input validation only), with
the same centres (``init=`` them, one Lloyd iteration on a small sample, then the centres set
back). The target: one record under 10 µs after warm-up, and at least 5x scikit-learn's time.
Each figure is the median over rounds of the mean time per record; ratios from one run.
Output: the figures, also in ``benchmarks/results/assign_speed-YYYYmmdd-HHMMSS.json``
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
from results_file import add_out_option, write_results
from sklearn.cluster import KMeans as SklearnKMeans

import fastseg
from fastseg.datasets import FEATURES, write_customers


def per_record(func, items, rounds):
    """Median over rounds of the mean seconds per item of func(item)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for item in items:
            func(item)
        times.append((time.perf_counter() - start) / len(items))
    return statistics.median(times)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    add_out_option(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    stamp = datetime.now()
    folder = Path(tempfile.mkdtemp(prefix="fastseg-assign-"))
    write_customers(folder / "fit.parquet", 200_000, seed=5)
    write_customers(folder / "new.parquet", args.records, seed=6)
    columns = [*FEATURES, "region"]
    model = fastseg.KMeans(
        6, random_state=0, scale="standard", missing="median", categorical=["region"]
    ).fit(folder / "fit.parquet", columns=columns)
    new = pl.read_parquet(folder / "new.parquet").select(columns)
    records = new.to_dicts()
    scaled = np.vstack([b.scaled for b in model.iter_assign(new)]).astype(np.float64)
    sk = SklearnKMeans(6, init=model.cluster_centers_.astype(np.float64), n_init=1, max_iter=1)
    sk.fit(scaled[:1000])
    sk.cluster_centers_ = model.cluster_centers_.astype(np.float64)
    rows = [scaled[i : i + 1] for i in range(len(records))]
    for record in records[:1000]:  # warm-up: the kernel loaded, caches filled
        model.assign(record)
    for row in rows[:200]:
        sk.predict(row)
    ours = per_record(model.assign, records, args.rounds)
    theirs = per_record(sk.predict, rows, args.rounds)
    batch = per_record(model.assign, [records], args.rounds) / len(records)
    same = np.mean([a["segment"] for a in model.assign(records)] == sk.predict(scaled))
    print(f"{len(records):,} records, {len(columns)} fields, k=6; medians of {args.rounds} rounds")
    print(f"fastseg model.assign(record):        {ours * 1e6:8.2f} µs a record")
    print(f"fastseg model.assign(list of all):   {batch * 1e6:8.2f} µs a record")
    print(f"scikit-learn predict(one scaled row): {theirs * 1e6:7.2f} µs a record")
    print(f"fastseg is {theirs / ours:.1f}x faster; the same segment for {same:.2%} of them")
    figures = {
        "records": len(records),
        "assign_us": ours * 1e6,
        "assign_list_us": batch * 1e6,
        "sklearn_predict_us": theirs * 1e6,
        "same_segment": float(same),
    }
    write_results(args, "assign_speed", stamp, figures)


if __name__ == "__main__":
    main()
