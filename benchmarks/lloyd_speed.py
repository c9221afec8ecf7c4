"""Lloyd k-means in memory, fastseg against scikit-learn: issue 18's kernel targets.

    python benchmarks/lloyd_speed.py                       # the four cases below
    python benchmarks/lloyd_speed.py --cases 10000000x8k8  # one of them
    python benchmarks/lloyd_speed.py --quick               # 10x fewer rows

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
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans as SkKMeans
from sklearn.cluster import kmeans_plusplus
from sklearn.datasets import make_blobs
from threadpoolctl import threadpool_limits

import fastseg

HERE = Path(__file__).resolve().parent
CASES = {  # name: (rows, features, k, iterations)
    "10000000x8k8": (10_000_000, 8, 8, 20),
    "1000000x8k64": (1_000_000, 8, 64, 15),
    "1000000x8k256": (1_000_000, 8, 256, 15),
    "1000000x32k64": (1_000_000, 32, 64, 15),
}


def make_case(rows, d, k, seed=0):
    X, _ = make_blobs(n_samples=rows, n_features=d, centers=k, cluster_std=5.0, random_state=seed)
    X = np.ascontiguousarray(X, dtype=np.float32)
    init, _ = kmeans_plusplus(X, k, random_state=seed)
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


def run_case(name, rows, d, k, iters, threads, repeat):
    X, init = make_case(rows, d, k)
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


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--cases", default=",".join(CASES), help="comma-separated, of: " + ", ".join(CASES)
    )
    p.add_argument("--quick", action="store_true", help="10x fewer rows in every case")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeat", type=int, default=2, help="timed fits per library, best kept")
    p.add_argument("--out", type=Path, default=HERE / "results")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
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
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"lloyd_speed-{stamp}.json"
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    doc = {
        "command": sys.argv,
        "settings": settings,
        "fastseg": fastseg.__version__,
        "results": results,
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
