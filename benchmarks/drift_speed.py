"""``fastseg drift`` against ``fastseg predict`` on the same rows: wall time and peak RSS.

    python benchmarks/drift_speed.py                   # 10M rows (the issue-15 target)
    python benchmarks/drift_speed.py --rows 1000000    # quick check

The target: drift of N rows against a model within 2x the wall time of ``fastseg predict`` on
the same rows, at a peak RSS within 1.2x of predict's. Data: two periods from ``fastseg
generate --rows N`` with seeds 11 and 12 (cached in ``benchmarks/data/``); the model is fitted
on the first (8 numeric features and the region, k=6, standard scaling), once. Measured, each
command in a fresh process, alternating, ``--repeat`` times (medians reported):
``predict`` of the second period (every input column written), ``drift`` of it against the
model's own profile, and ``drift --reference`` the first period ``--id customer_id`` (two
passes and the join by id). Ratios come from the same run: the machine is shared.
Output: the table, and the runs with their medians in
``benchmarks/results/drift_speed-YYYYmmdd-HHMMSS.json`` (``--out`` for another folder).
"""

import argparse
import statistics
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labels_memory import run  # noqa: E402  (peak RSS and seconds of one command)
from results_file import add_out_option, write_results  # noqa: E402

HERE = Path(__file__).resolve().parent
FEATURES = (
    "age,income,monthly_charge,bandwidth_gb_year,tenure_months,spending_score,"
    "purchase_frequency,avg_order_value,region"
)


def periods(rows, folder):
    found = []
    for seed in (11, 12):
        path = folder / f"drift_{rows}_{seed}.parquet"
        if not path.exists():
            print(f"writing {path} ...", flush=True)
            run(["generate", "--rows", rows, "--seed", seed, "--out", path, "--quiet"])
        found.append(path)
    return found


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    add_out_option(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    stamp = datetime.now()
    folder = HERE / "data"
    folder.mkdir(exist_ok=True)
    old, new = periods(args.rows, folder)
    model, out = folder / f"drift_{args.rows}_model.json", folder / "drift_predict.parquet"
    if not model.exists():
        print("fitting the model ...", flush=True)
        run(
            [
                "fit",
                old,
                "--k",
                6,
                "--features",
                FEATURES,
                "--categorical",
                "region",
                "--missing",
                "median",
                "--scale",
                "standard",
                "--model",
                model,
                "--quiet",
            ]
        )
    commands = {
        "predict": ["predict", model, new, "--out", out, "--overwrite", "--quiet"],
        "drift": ["drift", model, new, "--json", "--quiet"],
        "drift --reference --id": [
            "drift",
            model,
            new,
            "--reference",
            old,
            "--id",
            "customer_id",
            "--json",
            "--quiet",
        ],
    }
    measured = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, argv in commands.items():
            measured[name].append(run(argv))
    out.unlink(missing_ok=True)
    medians = {
        n: [statistics.median(m[i] for m in runs) for i in (0, 1)] for n, runs in measured.items()
    }
    peak0, time0 = medians["predict"]
    print(f"\n{args.rows:,} rows; medians of {args.repeat} runs")
    print(f"{'command':<24}{'seconds':>9}{'vs predict':>12}{'peak MB':>9}{'vs predict':>12}")
    for name, (peak, seconds) in medians.items():
        print(
            f"{name:<24}{seconds:>9.2f}{seconds / time0:>11.2f}x{peak:>9.0f}{peak / peak0:>11.2f}x"
        )
    figures = {
        "rows": args.rows,
        "runs": measured,  # [peak RSS MB, seconds] of each run
        "medians": medians,
    }
    write_results(args, "drift_speed", stamp, figures)


if __name__ == "__main__":
    main()
