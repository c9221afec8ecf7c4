"""How fastseg's fit cost grows with rows and with k: time per phase, peak memory and a plot.

    python benchmarks/cost_growth.py --rows 1000000,2000000,5000000,10000000,20000000
        --k 4,8,16,32,64 [--k-rows 10000000] [--rows-k 8] [--iters 20] [--threads T]
        [--repeat R] [--timeout S] [--plot docs/cost_growth.png] [--out benchmarks/results/]

Two grids: every ``--rows`` count at k = ``--rows-k`` (default 8), and every ``--k`` at
``--k-rows`` rows (default 10M). A point in both grids (10M rows, k=8 by default) runs once.

Data: ``write_customers(path, rows, seed=0)``, cached as
``benchmarks/data/customers_{rows}.parquet`` like ``compare.py`` (missing files are written
first). The parent reads each file once before its runs, so it is in the page cache.

Each measurement runs in its own process (``--worker``), so its peak RSS is its own. The worker
fits ``fastseg.KMeans(k, init="k-means++", n_init=1, max_iter=ITERS, tol=0, random_state=0,
scale="standard", missing="drop", n_threads=T)`` on the Parquet path with ``columns=FEATURES``:
reading and decoding the Parquet file is part of the measured cost. One untimed warm-up fit on a
20k-row array comes first (Numba JIT / cache load is never timed), then the peak RSS is reset
and one fit is timed. The worker prints one JSON line: the wall seconds of ``fit``, the
estimator's ``timings_`` ("read": decode Parquet, checks, moments, cache the rows;
"preprocess": standardise, draw the init sample; "init": k-means++; "iterations": Lloyd),
``n_iter_``, the peak RSS during the fit (VmHWM) and the RSS just before it.
``POLARS_MAX_THREADS=T`` is set for the worker, since ``n_threads`` sets Numba's pool only.
With ``--repeat R`` each point runs in R fresh processes and the fastest is kept.

Prints one Markdown table and one linearity line per grid, writes the results with machine
information to ``OUT/cost_growth-YYYYmmdd-HHMMSS.json`` and draws ``--plot`` (matplotlib, Agg):
seconds per phase as stacked areas ("other" = total minus the four phases: validation and
set-up), with the peak RSS on a second axis, against rows and against k. matplotlib is needed
for the plot only (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from compare import (
    customers_path,
    int_list,
    machine_info,
    peak_rss_mb,
    proc_status_mb,
    reset_peak_rss,
)

HERE = Path(__file__).resolve().parent
SEED = 0
WARMUP_ROWS = 20_000
PHASES = ("read", "preprocess", "init", "iterations")
COLOURS = {"read": "#4c72b0", "preprocess": "#8172b3", "init": "#dd8452",
           "iterations": "#55a868", "other": "#b0b0b0", "rss": "#c44e52"}


# ----- worker: one fit in its own process --------------------------------------------------
def worker(args):
    """Fit fastseg KMeans on one Parquet file as the parent asked; print one JSON line."""
    import numpy as np

    import fastseg
    from fastseg.datasets import FEATURES

    k = args.k[0]

    def make(iters):
        return fastseg.KMeans(k, init="k-means++", n_init=1, max_iter=iters, tol=0.0,
                              random_state=SEED, scale="standard", missing="drop",
                              n_threads=args.threads)

    warm = np.random.default_rng(SEED).standard_normal((WARMUP_ROWS, len(FEATURES)))
    make(2).fit(warm.astype(np.float32))  # JIT / cache load: untimed
    del warm
    before = proc_status_mb("VmRSS")
    peak_reset = reset_peak_rss()
    est = make(args.iters)
    start = time.perf_counter()
    est.fit(args.data, columns=list(FEATURES))
    seconds = time.perf_counter() - start
    print(json.dumps({
        "seconds": seconds,
        "timings": {phase: est.timings_.get(phase, 0.0) for phase in PHASES},
        "n_iter": int(est.n_iter_),
        "n_rows": int(est.labels_.shape[0]),
        "n_rows_dropped": int(est.n_rows_dropped_),
        "inertia": float(est.inertia_),
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_is_fit_only": peak_reset,
        "rss_before_fit_mb": before,
    }), flush=True)


# ----- parent: data, runs, report ----------------------------------------------------------
def customers_file(rows, data_dir):
    """The cached synthetic customers file for ``rows`` (written if missing), in page cache."""
    path = customers_path(rows, data_dir)
    with open(path, "rb") as f:  # one read, so no run pays for the first disk read
        while f.read(1 << 24):
            pass
    return path


def run_point(rows, k, args):
    """Fit ``k`` clusters on ``rows`` customers in ``--repeat`` fresh processes; the fastest."""
    path = customers_file(rows, args.data_dir)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--data", str(path),
           "--k", str(k), "--iters", str(args.iters), "--threads", str(args.threads)]
    env = {**os.environ, "POLARS_MAX_THREADS": str(args.threads)}
    base = {"rows": rows, "k": k}
    runs, error = [], None
    for _ in range(args.repeat):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                  timeout=args.timeout)
        except subprocess.TimeoutExpired:
            error = f"timed out after {args.timeout} s"
            continue
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            error = f"exit {proc.returncode}: " + " | ".join(tail)
            continue
        runs.append(json.loads(lines[-1]))
    if not runs:
        return {**base, "error": error}
    best = min(runs, key=lambda r: r["seconds"])
    return {**base, **best, "all_seconds": [r["seconds"] for r in runs]}


def run_grid(name, points, args, done):
    """Measure every (rows, k) of one grid, reusing points measured already (``done``)."""
    print(f"\n{name}:", flush=True)
    results = []
    for rows, k in points:
        if (rows, k) not in done:
            done[rows, k] = run_point(rows, k, args)
            res = done[rows, k]
            print(f"  {rows:,} rows, k={k}: " + (res["error"] if "error" in res else
                  f"{res['seconds']:.2f} s, peak RSS {res['peak_rss_mb']:,.0f} MB"), flush=True)
        results.append(done[rows, k])
    return results


def derived(r):
    """Seconds per iteration and nanoseconds per row per iteration of one result."""
    per_iter = r["timings"]["iterations"] / max(r["n_iter"], 1)
    return per_iter, per_iter / r["n_rows"] * 1e9


def table(results, key):
    """Markdown table of one grid; ``key`` ("rows" or "k") is the first column."""
    lines = [f"| {key} | total s | read s | preprocess s | init s | iterations s | n_iter "
             "| s / iteration | ns / row / iteration | peak RSS MB | RSS before MB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r[key]:,} | failed: {r['error']} | | | | | | | | | |")
            continue
        t = r["timings"]
        per_iter, ns = derived(r)
        lines.append(f"| {r[key]:,} | {r['seconds']:.3f} | {t['read']:.3f} "
                     f"| {t['preprocess']:.3f} | {t['init']:.3f} "
                     f"| {t['iterations']:.3f} | {r['n_iter']} | {per_iter:.3g} | {ns:.2f} "
                     f"| {r['peak_rss_mb']:,.0f} | {r['rss_before_fit_mb']:,.0f} |")
    return "\n".join(lines)


def linearity(results, key):
    """One line showing whether the cost grows linearly in ``key``."""
    ok = [r for r in results if "error" not in r]
    if key == "rows":
        parts = [f"{short(r['rows'])} {r['seconds'] / (r['rows'] / 1e6):.3f}" for r in ok]
        return "total seconds per million rows (flat = linear): " + ", ".join(parts)
    parts = [f"k={r['k']} {derived(r)[0] / r['k'] * 1e3:.3g}" for r in ok]
    return "ms per iteration per centre (s / iteration / k; flat = linear): " + ", ".join(parts)


def short(n):
    """1000000 -> '1M', 2500000 -> '2.5M', 20000 -> '20k'."""
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return str(n)


def plot(rows_results, k_results, args, info, path):
    """Two panels: seconds per phase (stacked) and peak RSS, against rows and against k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.8), layout="constrained")
    threads = f"{args.threads} thread{'s' if args.threads > 1 else ''}"
    labels = {"read": "read (decode Parquet, checks, moments, cache rows)",
              "preprocess": "preprocess (standardise, draw init sample)",
              "init": "init (k-means++)", "iterations": f"iterations ({args.iters} max)",
              "other": "other (validation, set-up)"}
    panels = [
        (axes[0], rows_results, "rows", "rows (customers in the Parquet file)",
         f"Fit cost vs rows (k={args.rows_k})", lambda v, _: short(int(v))),
        (axes[1], k_results, "k", "k (clusters)",
         f"Fit cost vs k ({short(args.k_rows)} rows)", lambda v, _: f"{int(v):,}"),
    ]
    legend = {}
    for ax, results, key, xlabel, title, fmt in panels:
        ok = [r for r in results if "error" not in r]
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("fit wall time (s)")
        if not ok:
            ax.text(0.5, 0.5, "no results", ha="center", transform=ax.transAxes)
            continue
        x = [r[key] for r in ok]
        total = [r["seconds"] for r in ok]
        layers = {phase: [r["timings"][phase] for r in ok] for phase in PHASES}
        layers["other"] = [max(r["seconds"] - sum(r["timings"].values()), 0.0) for r in ok]
        ax.stackplot(x, *layers.values(), labels=[labels[p] for p in layers],
                     colors=[COLOURS[p] for p in layers], alpha=0.85)
        ax.plot(x, total, "k.", markersize=8, label="measured total")
        if key == "rows":  # straight through the origin and the largest point: linear growth
            ax.plot([0, x[-1]], [0, total[-1]], "k:", lw=1, label="proportional to rows")
        ax.set_xlim(0, max(x) * 1.03)
        ax.set_ylim(0, max(total) * 1.25)  # dots below the RSS line
        ax.set_xticks(x)
        ax.xaxis.set_major_formatter(FuncFormatter(fmt))
        ax.grid(axis="y", alpha=0.3)
        rss = ax.twinx()
        rss.plot(x, [r["peak_rss_mb"] for r in ok], "o--", color=COLOURS["rss"],
                 label="peak RSS during the fit (right axis)")
        rss.set_ylabel("peak RSS (MB)", color=COLOURS["rss"])
        rss.tick_params(axis="y", colors=COLOURS["rss"])
        rss.set_ylim(0, max(r["peak_rss_mb"] for r in ok) * 1.1)
        rss.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        for a in (ax, rss):
            legend.update(zip(*a.get_legend_handles_labels()[::-1], strict=True))
    fig.legend(legend.values(), legend.keys(), loc="outside lower center", ncol=4, fontsize=9)
    fig.suptitle(f"fastseg {info['fastseg']} KMeans fit from Parquet: synthetic customers, "
                 f"8 features, k-means++, {args.iters} Lloyd iterations max, {threads} "
                 f"({info['cpu_count']} CPUs, {info['cpu_model']})", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int_list,
                   default=[1_000_000, 2_000_000, 5_000_000, 10_000_000, 20_000_000],
                   help="customer counts of the rows grid (default 1M,2M,5M,10M,20M)")
    p.add_argument("--rows-k", type=int, default=8, help="k of the rows grid (default 8)")
    p.add_argument("--k", type=int_list, default=[4, 8, 16, 32, 64],
                   help="cluster counts of the k grid (default 4,8,16,32,64)")
    p.add_argument("--k-rows", type=int, default=10_000_000,
                   help="customer count of the k grid (default 10000000)")
    p.add_argument("--iters", type=int, default=20, help="Lloyd max_iter, tol=0 (default 20)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="Numba and Polars threads (default all cores)")
    p.add_argument("--repeat", type=int, default=1,
                   help="processes per point, fastest kept (default 1)")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per worker process")
    p.add_argument("--data-dir", type=Path, default=HERE / "data",
                   help="cache of generated Parquet files (default benchmarks/data)")
    p.add_argument("--out", type=Path, default=HERE / "results",
                   help="folder for the JSON results (default benchmarks/results)")
    p.add_argument("--plot", type=Path, default=HERE.parent / "docs" / "cost_growth.png",
                   help="PNG to draw (default docs/cost_growth.png)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    info = machine_info()
    print(f"fastseg {info['fastseg']}, numpy {info['numpy']}, polars {info['polars']}, "
          f"{info['cpu_count']} CPUs ({info['cpu_model']}); KMeans k-means++, "
          f"max_iter={args.iters} tol=0, scale=standard, missing=drop, "
          f"threads={args.threads}, best of {args.repeat} process(es) per point")
    stamp = datetime.now()
    done = {}
    rows_results = run_grid(f"rows grid (k={args.rows_k})",
                            [(rows, args.rows_k) for rows in args.rows], args, done)
    k_results = run_grid(f"k grid ({args.k_rows:,} rows)",
                         [(args.k_rows, k) for k in args.k], args, done)

    for results, key, title in ((rows_results, "rows", f"k={args.rows_k}"),
                                (k_results, "k", f"{args.k_rows:,} rows")):
        print(f"\n### fit cost vs {key} ({title}, {args.threads} threads)\n")
        print(table(results, key))
        print("\n" + linearity(results, key), flush=True)
    print("\ntotal = wall time of fit(); read = decode Parquet, checks, moments, cache the rows; "
          "preprocess = standardise, draw the init sample; peak RSS = the worker's VmHWM during "
          "the fit (libraries included); RSS before = after imports and the warm-up fit")

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"cost_growth-{stamp:%Y%m%d-%H%M%S}.json"
    settings = {k: v for k, v in vars(args).items() if k not in ("worker", "data")}
    settings.update(data_dir=str(args.data_dir), out=str(args.out), plot=str(args.plot),
                    seed=SEED, warmup_rows=WARMUP_ROWS)
    path.write_text(json.dumps({"date": stamp.astimezone().isoformat(timespec="seconds"),
                                "command": sys.argv, "machine": info, "settings": settings,
                                "rows_grid": rows_results, "k_grid": k_results}, indent=2))
    print(f"\nresults written to {path}")
    plot(rows_results, k_results, args, info, args.plot)
    print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
