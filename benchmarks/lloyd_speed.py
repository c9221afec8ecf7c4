"""Lloyd k-means in memory, fastseg against scikit-learn: issue 18's kernel targets.

    python benchmarks/lloyd_speed.py                       # the four cases below
    python benchmarks/lloyd_speed.py --cases 10000000x8k8  # one of them
    python benchmarks/lloyd_speed.py --quick               # 10x fewer rows
    python benchmarks/lloyd_speed.py --grid --plot docs/kernel_growth.png   # k x d table

Cases (rows x features, k, iterations): 10M x 8, k=8, 20 iterations; 1M x 8 with k=64 and
k=256, and 1M x 32 with k=64, 15 iterations. Data: ``make_blobs`` float32 (k blobs, std 5 in
the default box, so they overlap as customers do), and k-means++ centres from scikit-learn,
the same for both libraries. Both run the iterations (``tol=0``; an early convergence is
printed) on 2 threads
(``threadpool_limits`` for scikit-learn, ``n_threads`` for fastseg), one untimed warm-up fit
first, best of ``--repeat`` timed fits each, alternating.

Prints, per case, both fit times and their ratio, fastseg's average pass (``timings_``
"iterations" / ``n_iter_``) against one NumPy read of the array (``X.sum()``, best of 5),
and how many labels differ from scikit-learn's (it keeps float32 centres and distances on
float32 input: a few near-tie rows may differ; fastseg is exact in float64). Nothing asserts
on time. Writes ``OUT/lloyd_speed-YYYYmmdd-HHMMSS.json``.

``--grid`` runs instead every k of ``--grid-k`` (4 ... 256) with every d of ``--grid-d``
(4 ... 64) on ``--grid-rows`` rows (1M), at most 15 iterations (k-means++ on the first
100,000 rows), one timed fit each, and prints the whole fit's cost per row per iteration of
both libraries as a k x d table; ``--plot`` draws it (matplotlib).
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from results_file import add_out_option, write_results
from sklearn.cluster import KMeans as SkKMeans
from sklearn.cluster import kmeans_plusplus
from sklearn.datasets import make_blobs
from threadpoolctl import threadpool_limits

import fastseg

CASES = {  # name: (rows, features, k, iterations)
    "10000000x8k8": (10_000_000, 8, 8, 20),
    "1000000x8k64": (1_000_000, 8, 64, 15),
    "1000000x8k256": (1_000_000, 8, 256, 15),
    "1000000x32k64": (1_000_000, 32, 64, 15),
}


def make_case(rows, d, k, seed=0, init_rows=None):
    """float32 blobs and k-means++ centres (from the first ``init_rows`` rows: all by default)."""
    X, _ = make_blobs(n_samples=rows, n_features=d, centers=k, cluster_std=5.0, random_state=seed)
    X = np.ascontiguousarray(X, dtype=np.float32)
    init, _ = kmeans_plusplus(X[:init_rows], k, random_state=seed)
    return X, np.ascontiguousarray(init, dtype=np.float32)


def fit_sklearn(X, init, iters, threads):
    with threadpool_limits(limits=threads):
        model = SkKMeans(
            init.shape[0], init=init, n_init=1, max_iter=iters, tol=0.0, algorithm="lloyd"
        )
        return model.fit(X)


def fit_fastseg(X, init, iters, threads):
    return fastseg.KMeans(
        init.shape[0], init=init, n_init=1, max_iter=iters, tol=0.0, n_threads=threads
    ).fit(X)


def timed(fn, *args):
    start = time.perf_counter()
    model = fn(*args)
    return time.perf_counter() - start, model


def numpy_read(X, repeat=5):
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        X.sum()
        best = min(best, time.perf_counter() - start)
    return best


def run_case(name, rows, d, k, iters, threads, repeat, init_rows=None):
    X, init = make_case(rows, d, k, init_rows=init_rows)
    small = X[:20_000]
    fit_sklearn(small, init, 2, threads)  # warm-up: imports, Numba's cache, thread pools
    fit_fastseg(small, init, 2, threads)
    sk_times, fs_times = [], []
    for _ in range(repeat):
        t, sk = timed(fit_sklearn, X, init, iters, threads)
        sk_times.append(t)
        t, fs = timed(fit_fastseg, X, init, iters, threads)
        fs_times.append(t)
    if not sk.n_iter_ == fs.n_iter_ == iters:
        print(
            f"  ({name}: converged early, scikit-learn after {sk.n_iter_} iterations, "
            f"fastseg after {fs.n_iter_})"
        )
    read = numpy_read(X)
    per_pass = fs.timings_["iterations"] / fs.n_iter_
    return {
        "case": name,
        "rows": rows,
        "features": d,
        "k": k,
        "iterations": iters,
        "n_iter": {"sklearn": int(sk.n_iter_), "fastseg": int(fs.n_iter_)},
        "sklearn_s": min(sk_times),
        "fastseg_s": min(fs_times),
        "speedup": min(sk_times) / min(fs_times),
        "fastseg_pass_ms": 1e3 * per_pass,
        "numpy_read_ms": 1e3 * read,
        "pass_vs_read": per_pass / read,
        "fastseg_timings": fs.timings_,
        "labels_differ": int(np.count_nonzero(fs.labels_ != sk.labels_)),
        "inertia_ratio": fs.inertia_ / sk.inertia_,
    }


def int_list(text):
    return [int(v) for v in text.split(",")]


def run_grid(args):
    """Every (k, d) of the grid: fit seconds of both libraries and their ratio."""
    results = []
    print(f"{'k':>4}{'d':>4}{'sklearn ns':>12}{'fastseg ns':>12}{'speed-up':>10}")
    for d in args.grid_d:
        for k in args.grid_k:
            name = f"{args.grid_rows}x{d}k{k}"
            r = run_case(name, args.grid_rows, d, k, 15, args.threads, 1, init_rows=100_000)
            for library in ("sklearn", "fastseg"):  # per iteration it ran
                per = 1e9 / (args.grid_rows * r["n_iter"][library])
                r[f"{library}_ns"] = r[f"{library}_s"] * per
            results.append(r)
            print(
                f"{k:>4}{d:>4}{r['sklearn_ns']:>12.1f}{r['fastseg_ns']:>12.1f}"
                f"{r['speedup']:>9.2f}x",
                flush=True,
            )
    return results


def plot_grid(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, library in zip(axes, ("sklearn", "fastseg"), strict=True):
        for d in sorted({r["features"] for r in results}):
            mine = [r for r in results if r["features"] == d]
            ax.plot(
                [r["k"] for r in mine], [r[f"{library}_ns"] for r in mine], "o-", label=f"d={d}"
            )
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="k (segments)",
            title="scikit-learn KMeans (lloyd)" if library == "sklearn" else "fastseg KMeans",
        )
        ax.set_xticks([r["k"] for r in results if r["features"] == results[0]["features"]])
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.legend()
    axes[0].set_ylabel("ns per row per iteration (fit / rows / iterations)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--cases", default=",".join(CASES), help="comma-separated, of: " + ", ".join(CASES)
    )
    p.add_argument("--quick", action="store_true", help="10x fewer rows in every case")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeat", type=int, default=2, help="timed fits per library, best kept")
    add_out_option(p)
    p.add_argument("--grid", action="store_true", help="the k x d grid instead of the cases")
    p.add_argument("--grid-k", type=int_list, default=[4, 16, 64, 256])
    p.add_argument("--grid-d", type=int_list, default=[4, 16, 64])
    p.add_argument("--grid-rows", type=int, default=1_000_000)
    p.add_argument(
        "--plot", type=Path, help="with --grid: draw it here, e.g. docs/kernel_growth.png"
    )
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    stamp = datetime.now()
    if args.grid:
        results = run_grid(args)
        if args.plot:
            plot_grid(results, args.plot)
            print(f"plot: {args.plot}")
        return write(args, stamp, results)
    results = []
    print(
        f"{'case':<16}{'sklearn s':>10}{'fastseg s':>10}{'speed-up':>10}{'pass ms':>9}"
        f"{'read ms':>9}{'pass/read':>10}{'labels differ':>15}"
    )
    for name in args.cases.split(","):
        rows, d, k, iters = CASES[name]
        rows = rows // 10 if args.quick else rows
        r = run_case(name, rows, d, k, iters, args.threads, args.repeat)
        results.append(r)
        print(
            f"{name:<16}{r['sklearn_s']:>10.3f}{r['fastseg_s']:>10.3f}{r['speedup']:>9.2f}x"
            f"{r['fastseg_pass_ms']:>9.1f}{r['numpy_read_ms']:>9.1f}{r['pass_vs_read']:>9.2f}x"
            f"{r['labels_differ']:>15,}",
            flush=True,
        )
    write(args, stamp, results)


def write(args, stamp, results):
    figures = {"fastseg": fastseg.__version__, "results": results}
    path = write_results(args, "lloyd_speed", stamp, figures)
    print(f"written: {path}")


if __name__ == "__main__":
    main()
