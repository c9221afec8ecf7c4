"""Peak RSS of the labelling passes against the number of rows: ``fastseg predict`` (every input
column written) and ``fastseg fit --labels``, on N rows and on globs of 2 and 4 copies.

    python benchmarks/labels_memory.py                       # N = 10M rows (40M at most)
    python benchmarks/labels_memory.py --rows 1000000        # quick check
    python benchmarks/labels_memory.py --baseline /tmp/old/src   # the same runs on other code

The target: peak RSS independent of the rows (4N within 15 % of N). Data: ``fastseg generate
--rows N --seed 11`` (cached as ``benchmarks/data/labels_{N}.parquet``); the 2N and 4N inputs are
globs over hard links of it, so nothing more is written to disk. The model is fitted on 4
features (age, income, monthly_charge, tenure_months), k=5, once. Each run is a fresh process;
its peak RSS is its own VmHWM (a forked child's ``ru_maxrss`` starts at the parent's peak).
``--baseline SRC`` runs every command with ``PYTHONPATH=SRC`` first, so two versions of fastseg
are measured in one run (ratios, not seconds: the machine is shared).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
FEATURES = "age,income,monthly_charge,tenure_months"
PEAK = (
    "import sys; from fastseg.cli import main; code = main(sys.argv[1:]); "
    "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]); "
    "sys.exit(code)"
)


def run(argv, src=None):
    """(peak RSS MB, seconds) of one ``fastseg`` command in a fresh process."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = str(src)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *map(str, argv)], capture_output=True, text=True, env=env
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed: fastseg {' '.join(map(str, argv))}\n{done.stderr}")
    return int(done.stdout.strip().splitlines()[-1]) / 1024, seconds


def inputs(rows, folder):
    """{copies: data argument}: the N-row file and globs over 2 and 4 hard links of it."""
    one = folder / f"labels_{rows}.parquet"
    if not one.exists():
        print(f"writing {one} ...", flush=True)
        run(["generate", "--rows", rows, "--seed", 11, "--out", one, "--quiet"])
    found = {1: one}
    for copies in (2, 4):
        glob_dir = folder / f"labels_{rows}_x{copies}"
        glob_dir.mkdir(exist_ok=True)
        for i in range(copies):
            link = glob_dir / f"part-{i}.parquet"
            if not link.exists():
                os.link(one, link)
        found[copies] = f"{glob_dir}/*.parquet"
    return found


def measure(data, model, out, src):
    rows = {}
    common = ["--quiet", "--overwrite"]
    for copies, path in data.items():
        predict = run(["predict", model, path, "--out", out, *common], src)
        fit = run(
            ["fit", path, "--k", 5, "--features", FEATURES, "--max-iter", 10,
             "--memory-budget", "256MB", "--labels", out, *common],
            src,
        )  # fmt: skip
        rows[copies] = {"predict": predict, "fit_labels": fit}
        print(f"  {copies}N: predict {predict[0]:.0f} MB ({predict[1]:.1f} s), "
              f"fit --labels {fit[0]:.0f} MB ({fit[1]:.1f} s)", flush=True)  # fmt: skip
    return rows


def table(name, rows, n):
    lines = [f"\n### {name}: peak RSS MB (ratio to {n:,} rows)\n",
             "| rows | predict | fit --labels |", "|---:|---:|---:|"]  # fmt: skip
    for copies, r in rows.items():
        cells = [
            f"{r[k][0]:.0f} ({r[k][0] / rows[1][k][0]:.2f}x)" for k in ("predict", "fit_labels")
        ]
        lines.append(f"| {copies * n:,} | {' | '.join(cells)} |")
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000_000, help="N (default 10M)")
    p.add_argument("--data-dir", type=Path, default=HERE / "data")
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--baseline", help="another fastseg's src folder, measured first")
    return p.parse_args(argv)


def main():
    args = parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    data = inputs(args.rows, args.data_dir)
    model, out = args.data_dir / "labels_model.json", args.data_dir / "labels_out.parquet"
    results = {}
    for name, src in ([("baseline", args.baseline)] if args.baseline else []) + [("this", None)]:
        print(f"{name}:", flush=True)
        run(["fit", data[1], "--k", 5, "--features", FEATURES, "--max-iter", 10,
             "--model", model, "--quiet", "--overwrite"], src)  # fmt: skip
        results[name] = measure(data, model, out, src)
    for name, rows in results.items():
        print(table(name, rows, args.rows))
    out.unlink(missing_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.out / f"labels_memory-{stamp}.json"
    path.write_text(json.dumps({"rows": args.rows, "results": results}, indent=1))
    print(f"\nresults written to {path}")


if __name__ == "__main__":
    main()
