"""Parquet is the fast path: ``fastseg fit`` on the same customers as Parquet, CSV and NDJSON.

    python benchmarks/text_inputs.py                  # 1M rows, 3 rounds
    python benchmarks/text_inputs.py --rows 200000 --rounds 1   # quick check

Data: ``fastseg generate --rows N --seed 1`` (cached in ``benchmarks/data``), written again as
CSV and NDJSON by polars. Each round runs ``fastseg fit FILE --k 6 --features <8 features>``
once per format in a fresh process, formats interleaved (the machine is shared: ratios to
Parquet from the same round hold, seconds drift). Prints each format's median seconds, its
ratio to Parquet and its peak RSS (the process's own VmHWM), and checks that every format
gives the same model.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FEATURES = (
    "age,income,monthly_charge,bandwidth_gb_year,tenure_months,spending_score,"
    "purchase_frequency,avg_order_value"
)
PEAK = (
    "import sys; from fastseg.cli import main; code = main(sys.argv[1:]); "
    "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]); "
    "sys.exit(code)"
)


def data_files(rows):
    """The customers as Parquet, CSV and NDJSON (made once, then reused)."""
    import polars as pl

    from fastseg.datasets import write_customers

    folder = HERE / "data"
    folder.mkdir(exist_ok=True)
    parquet = folder / f"text_inputs_{rows}.parquet"
    if not parquet.exists():
        write_customers(parquet, rows, seed=1)
    files = {"Parquet": parquet}
    for name, suffix, write in (
        ("CSV", ".csv", pl.DataFrame.write_csv),
        ("NDJSON", ".ndjson", pl.DataFrame.write_ndjson),
    ):
        path = parquet.with_suffix(suffix)
        if not path.exists():
            write(pl.read_parquet(parquet), path)
        files[name] = path
    return files


def fit(path, model):
    """(seconds, peak RSS MB) of one ``fastseg fit`` in a fresh process."""
    argv = [str(path), "--k", "6", "--features", FEATURES, "--seed", "0", "--quiet"]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK, "fit", *argv, "--model", str(model), "--overwrite"],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"fastseg fit {path} failed:\n{done.stderr}")
    return seconds, int(done.stdout.strip().splitlines()[-1]) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    files = data_files(args.rows)
    fit(files["Parquet"], HERE / "data" / "warm.json")  # compile the kernels first
    seconds = {name: [] for name in files}
    peaks = {name: [] for name in files}
    for _ in range(args.rounds):
        for name, path in files.items():
            s, peak = fit(path, HERE / "data" / f"text_inputs_{name}.json")
            seconds[name].append(s)
            peaks[name].append(peak)
    centres = {
        name: json.loads((HERE / "data" / f"text_inputs_{name}.json").read_text())[
            "cluster_centers"
        ]
        for name in files
    }
    parquet = statistics.median(seconds["Parquet"])
    print(f"fastseg fit, {args.rows:,} rows, 8 features, k=6 (median of {args.rounds})")
    for name in files:
        s = statistics.median(seconds[name])
        same = centres[name] == centres["Parquet"]
        print(
            f"  {name:8} {s:6.2f} s  {s / parquet:5.2f}x Parquet  "
            f"peak RSS {max(peaks[name]):,.0f} MB  same model: {same}"
        )


if __name__ == "__main__":
    main()
