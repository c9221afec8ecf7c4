"""fastseg vs scikit-learn on synthetic customers: time, peak memory and results of each method.

    python benchmarks/compare.py --rows 1000000,10000000 --k 8 --iters 20
        [--methods fastseg-kmeans,sklearn-lloyd,sklearn-elkan,sklearn-minibatch,fastseg-minibatch]
        [--batch-size 65536,4096] [--threads T] [--repeat R] [--out benchmarks/results/]

For each row count the parent process prepares the data once: ``write_customers`` Parquet
(cached in ``--data-dir``), the 8 ``FEATURES`` with null rows dropped, standardised and stored as
a float32 ``.npy`` in a temporary folder, plus k-means++ initial centres
(``sklearn.cluster.kmeans_plusplus``, ``random_state=0``, on a 100k-row sample) that every
method starts from. Each method then runs in its own process (``--worker``), so its peak RSS is
its own: it loads the array, fits once untimed on a small slice (Numba JIT / cache load, so
compilation is never timed), times ``--repeat`` whole ``fit`` calls (best reported) and prints
one JSON line. Lloyd methods run ``max_iter=ITERS, tol=0`` (fewer iterations only on strict
convergence, which is reported); mini-batch methods run ``max_iter=1, max_no_improvement=None,
tol=0``: ``rows // batch_size`` steps each. Threads: ``threadpool_limits(T)`` in every worker
and ``n_threads=T`` for fastseg.

The fastseg KMeans worker also times one Lloyd pass, ``(t(ITERS) - t(1)) / (ITERS - 1)``, against
one NumPy stream over the same array (``X.sum()``, best of 5). Results and machine information
go to ``OUT/compare-YYYYmmdd-HHMMSS.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 0
INIT_SAMPLE = 100_000
WARMUP_ROWS = 50_000
STREAM_ROUNDS = 5
LLOYD = {
    "fastseg-kmeans": "fastseg KMeans",
    "sklearn-lloyd": "sklearn KMeans lloyd",
    "sklearn-elkan": "sklearn KMeans elkan",
}
MINIBATCH = {
    "sklearn-minibatch": "sklearn MiniBatchKMeans",
    "fastseg-minibatch": "fastseg MiniBatchKMeans",
}
METHODS = {**LLOYD, **MINIBATCH}
BASELINE = "sklearn-lloyd"


# ----- worker: one method in its own process -----------------------------------------------
def make_estimator(method, init, iters, batch_size, threads, stopping="fixed"):
    """The estimator for ``method``, starting from ``init``, with the amount of work asked.

    Mini-batch methods run a fixed ``rows // batch_size`` steps (``stopping="fixed"``), or
    scikit-learn's default stopping rule in both libraries (``"default"``: up to 100 epochs,
    early stop after 10 steps without improvement of the smoothed batch inertia).
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans

    k = init.shape[0]
    if method.startswith("fastseg"):
        import fastseg  # only here: sklearn workers do not load Numba
    if method == "fastseg-kmeans":
        return fastseg.KMeans(k, init=init, n_init=1, max_iter=iters, tol=0.0,
                              random_state=SEED, n_threads=threads)
    if method in ("sklearn-lloyd", "sklearn-elkan"):
        return KMeans(k, init=init, n_init=1, max_iter=iters, tol=0.0,
                      algorithm=method.split("-")[1], random_state=SEED)
    common = dict(init=init, n_init=1, batch_size=batch_size, max_iter=1, tol=0.0,
                  max_no_improvement=None, random_state=SEED)
    if stopping == "default":
        common.update(max_iter=100, max_no_improvement=10)
    if method == "sklearn-minibatch":
        return MiniBatchKMeans(k, **common)
    return fastseg.MiniBatchKMeans(k, n_threads=threads, **common)


def timed_fits(make, X, repeat):
    """Best wall time of ``repeat`` fits of fresh estimators, and the last fitted one."""
    best, est = np.inf, None
    for _ in range(repeat):
        est = None  # the previous fit's arrays do not count towards this one's peak
        est = make()
        start = time.perf_counter()
        est.fit(X)
        best = min(best, time.perf_counter() - start)
    return best, est


def proc_status_mb(field):
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MB, or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            line = next(ln for ln in f if ln.startswith(field + ":"))
        return int(line.split()[1]) / 2**10
    except (OSError, StopIteration):
        return None


def ru_maxrss_mb():
    """getrusage's peak RSS in MB. On Linux it also counts the parent's RSS at fork/exec."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def peak_rss_mb():
    """Peak RSS of this process's own memory (VmHWM, resettable), else ru_maxrss, in MB."""
    return proc_status_mb("VmHWM") or ru_maxrss_mb()


def reset_peak_rss():
    """Restart the peak at the current RSS (Linux 4.0+), so imports and warm-up do not count."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def lloyd_pass(X, init, args, t_iters, n_iters):
    """Seconds of one fastseg Lloyd pass (fits of ITERS and 1 iterations) and of X.sum()."""
    t_one, one = timed_fits(
        lambda: make_estimator("fastseg-kmeans", init, 1, None, args.threads), X, args.repeat
    )
    passes = n_iters - one.n_iter_
    stream = np.inf
    for _ in range(STREAM_ROUNDS):
        start = time.perf_counter()
        X.sum()
        stream = min(stream, time.perf_counter() - start)
    return {
        "fit_1_iter_seconds": t_one,
        "pass_seconds": (t_iters - t_one) / passes if passes > 0 else None,
        "numpy_sum_seconds": stream,
        "bytes": int(X.nbytes),
    }


def worker(args):
    """Fit one method as the parent asked and print its results as one JSON line."""
    from threadpoolctl import threadpool_limits

    X = np.load(args.data, mmap_mode=None)
    init = np.load(args.init)
    method, batch = args.worker, args.batch_size[0]

    def make(iters=args.iters):
        return make_estimator(method, init, iters, batch, args.threads, args.stopping)

    with threadpool_limits(limits=args.threads):
        make(2).fit(X[: min(X.shape[0], max(WARMUP_ROWS, 2 * (batch or 0)))])  # JIT: untimed
        process_peak, before = peak_rss_mb(), proc_status_mb("VmRSS")
        peak_reset = reset_peak_rss()
        seconds, est = timed_fits(make, X, args.repeat)
        out = {
            "method": method,
            "seconds": seconds,
            "peak_rss_mb": peak_rss_mb(),
            "ru_maxrss_mb": ru_maxrss_mb(),
            "peak_rss_is_fit_only": peak_reset,
            "peak_rss_before_fit_mb": process_peak,
            "rss_before_fit_mb": before,
            "inertia": float(est.inertia_),
            "n_iter": int(est.n_iter_),
            "n_steps": int(getattr(est, "n_steps_", 0)) or None,
        }
        if method == "fastseg-kmeans" and args.iters > 1:
            out["lloyd_pass"] = lloyd_pass(X, init, args, seconds, est.n_iter_)
    if args.labels:
        np.save(args.labels, est.labels_)
    print(json.dumps(out), flush=True)


# ----- parent: data, runs, report ----------------------------------------------------------
def customers_path(rows, data_dir):
    """The cached synthetic customers file for ``rows`` (``write_customers``, seed 0)."""
    from fastseg.datasets import write_customers

    path = data_dir / f"customers_{rows}.parquet"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        print(f"writing {path} ...", flush=True)
        write_customers(path, rows, seed=SEED)
    return path


def features(rows, data_dir):
    """Standardised float32 FEATURES of ``rows`` synthetic customers (null rows dropped)."""
    import polars as pl

    from fastseg.datasets import FEATURES

    query = pl.scan_parquet(customers_path(rows, data_dir)).select(FEATURES).drop_nulls()
    X = query.collect().to_numpy()
    mean, std = X.mean(axis=0, dtype=np.float64), X.std(axis=0, dtype=np.float64)
    return np.ascontiguousarray((X - mean) / std, dtype=np.float32)


def initial_centres(X, k):
    """k-means++ (random_state=0) on a uniform 100k-row sample, as float32."""
    from sklearn.cluster import kmeans_plusplus

    rng = np.random.default_rng(SEED)
    sample = X[np.sort(rng.choice(X.shape[0], min(INIT_SAMPLE, X.shape[0]), replace=False))]
    return kmeans_plusplus(sample, k, random_state=SEED)[0].astype(np.float32)


def run_worker(method, batch, files, args):
    """Run one method in a fresh interpreter; its JSON result, or an ``error`` entry."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", method,
           "--data", str(files["data"]), "--init", str(files["init"]),
           "--iters", str(args.iters), "--threads", str(args.threads),
           "--repeat", str(args.repeat), "--stopping", args.stopping]
    if batch is not None:
        cmd += ["--batch-size", str(batch)]
    if method in LLOYD:
        cmd += ["--labels", str(files["dir"] / f"labels-{method}.npy")]
    base = {"method": method, "label": METHODS[method], "batch_size": batch}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {**base, "error": f"timed out after {args.timeout} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {**base, "error": f"exit {proc.returncode}: " + " | ".join(tail)}
    return {**base, **json.loads(lines[-1])}


def plan(methods, batch_sizes):
    """(method, batch size) runs: Lloyd methods once, mini-batch ones per batch size."""
    return [(m, None) for m in methods if m in LLOYD] + [
        (m, b) for b in batch_sizes for m in methods if m in MINIBATCH
    ]


def run_size(rows, args):
    """Prepare the data for ``rows``, run every method on it, and compare the labels."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fastseg-compare-") as tmp:
        files = {"dir": Path(tmp), "data": Path(tmp) / "X.npy", "init": Path(tmp) / "init.npy"}
        X = features(rows, args.data_dir)
        n = X.shape[0]
        np.save(files["data"], X)
        np.save(files["init"], initial_centres(X, args.k))
        del X
        print(f"\n{rows:,} customers -> {n:,} rows x 8 features (nulls dropped), "
              f"float32, standardised; data ready in {time.perf_counter() - start:.1f} s",
              flush=True)
        results = []
        for method, batch in plan(args.methods, args.batch_size):
            res = run_worker(method, batch, files, args)
            print(f"  {res['label']}{'' if batch is None else f' (batch {batch})'}: "
                  + (res["error"] if "error" in res else f"{res['seconds']:.3f} s"), flush=True)
            results.append(res)
        done = [r["method"] for r in results if "error" not in r]
        agreement = label_agreement(files["dir"], done)
    check_work(results, n, args.iters, args.stopping)
    return {"rows": rows, "n_rows": n, "n_dropped": rows - n, "results": results,
            "label_agreement_vs_sklearn_lloyd": agreement}


def label_agreement(folder, methods):
    """Share and count of rows whose label equals sklearn lloyd's, per other Lloyd method."""
    if BASELINE not in methods:
        return {}
    ref = np.load(folder / f"labels-{BASELINE}.npy")
    out = {}
    for m in methods:
        if m in LLOYD and m != BASELINE:
            differ = int(np.count_nonzero(np.load(folder / f"labels-{m}.npy") != ref))
            out[m] = {"fraction_equal": 1 - differ / ref.size, "rows_differing": differ}
    return out


def check_work(results, n, iters, stopping):
    """Note every run that did not do the promised amount of work (early stop, other steps)."""
    for r in results:
        if "error" in r:
            continue
        if r["method"] in LLOYD:
            r["note"] = "" if r["n_iter"] == iters else f"converged strictly at {r['n_iter']}"
        elif stopping == "default":
            r["note"] = "early stop" if r["n_iter"] < 100 else ""
        else:
            want = max(1, n // r["batch_size"])
            r["note"] = "" if r["n_steps"] == want else f"expected {want} steps"


def table(size, iters):
    """Markdown table of one row count."""
    res = [r for r in size["results"] if "error" not in r]
    base = next((r["seconds"] for r in res if r["method"] == BASELINE), None)
    agree = size["label_agreement_vs_sklearn_lloyd"]
    lines = ["| method | seconds | ratio | peak RSS MB | fit +MB | inertia | n_iter / steps "
             "| labels = sklearn lloyd |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res:
        name = r["label"] + (f" (batch {r['batch_size']})" if r["batch_size"] else "")
        ratio = f"{base / r['seconds']:.2f}" if base else "-"
        work = str(r["n_iter"]) if r["method"] in LLOYD else f"{r['n_steps']} steps"
        work += f" ({r['note']})" if r["note"] else ""
        a = agree.get(r["method"])
        same = ("reference" if r["method"] == BASELINE else "-" if a is None
                else f"{a['fraction_equal']:.6f} ({a['rows_differing']} differ)")
        extra = r["peak_rss_mb"] - r["rss_before_fit_mb"] if r["rss_before_fit_mb"] else 0
        lines.append(f"| {name} | {r['seconds']:.3f} | {ratio} | {r['peak_rss_mb']:.0f} "
                     f"| {extra:.0f} | {r['inertia']:.7g} | {work} | {same} |")
    lines += [f"| {r['label']} | failed: {r['error']} | | | | | | |"
              for r in size["results"] if "error" in r]
    lines.append("\nratio = sklearn lloyd seconds / method seconds (> 1: faster than sklearn "
                 "lloyd); peak RSS = the worker's VmHWM during the timed fits (data and "
                 "libraries included); fit +MB = peak RSS - RSS just before the fits")
    for b in sorted({r["batch_size"] for r in res if r["batch_size"]}):
        pair = {r["method"]: r for r in res if r["batch_size"] == b}
        if {"sklearn-minibatch", "fastseg-minibatch"} <= set(pair):
            sk, fs = pair["sklearn-minibatch"], pair["fastseg-minibatch"]
            lines.append(
                f"\nmini-batch, batch {b}: fastseg {sk['seconds'] / fs['seconds']:.1f}x faster "
                f"than sklearn MiniBatchKMeans ({fs['n_steps']} vs {sk['n_steps']} steps); "
                f"inertia fastseg / sklearn = {fs['inertia'] / sk['inertia']:.4f}")
    for r in res:
        p = r.get("lloyd_pass")
        if p and p["pass_seconds"]:
            gb = p["bytes"] / 1e9
            lines.append(
                f"\none Lloyd pass (fastseg, (t({iters}) - t(1)) / passes): "
                f"{p['pass_seconds'] * 1e3:.1f} ms = {gb / p['pass_seconds']:.2f} GB/s; "
                f"NumPy X.sum() stream: {p['numpy_sum_seconds'] * 1e3:.1f} ms = "
                f"{gb / p['numpy_sum_seconds']:.2f} GB/s; pass / stream = "
                f"{p['pass_seconds'] / p['numpy_sum_seconds']:.2f}x")
    return "\n".join(lines)


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def machine_info():
    """CPU, memory and library versions, for the results file."""
    import numba
    import polars
    import sklearn
    import threadpoolctl

    import fastseg

    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "fastseg": fastseg.__version__,
        "numba": numba.__version__,
        "polars": polars.__version__,
        "threadpoolctl": threadpoolctl.__version__,
    }


def int_list(text):
    return [int(v) for v in text.split(",") if v.strip()]


def method_list(text):
    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in METHODS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown method(s) {bad}; choose from {list(METHODS)}")
    return names


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int_list, default=[1_000_000],
                   help="comma-separated customer counts (default 1000000)")
    p.add_argument("--k", type=int, default=8, help="clusters (default 8)")
    p.add_argument("--iters", type=int, default=20, help="Lloyd iterations (default 20)")
    p.add_argument("--methods", type=method_list, default=list(METHODS),
                   help=f"comma-separated, from {','.join(METHODS)} (default all)")
    p.add_argument("--batch-size", type=int_list, default=[65536],
                   help="mini-batch sizes, comma-separated (default 65536; e.g. 65536,4096)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="threads for both libraries (default all cores)")
    p.add_argument("--repeat", type=int, default=3, help="timed fits per method, best kept")
    p.add_argument("--stopping", choices=["fixed", "default"], default="fixed",
                   help="mini-batch work: rows // batch steps (fixed), or scikit-learn's "
                        "default early stopping in both libraries (default)")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per method process")
    p.add_argument("--data-dir", type=Path, default=HERE / "data",
                   help="cache of generated Parquet files (default benchmarks/data)")
    p.add_argument("--out", type=Path, default=HERE / "results",
                   help="folder for the JSON results (default benchmarks/results)")
    p.add_argument("--worker", choices=list(METHODS), help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--init", help=argparse.SUPPRESS)
    p.add_argument("--labels", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    info = machine_info()
    print(f"fastseg {info['fastseg']}, scikit-learn {info['scikit-learn']}, numpy "
          f"{info['numpy']}, {info['cpu_count']} CPUs ({info['cpu_model']}); k={args.k}, "
          f"Lloyd max_iter={args.iters} tol=0, mini-batch max_iter=1 (rows // batch steps), "
          f"threads={args.threads}, best of {args.repeat}")
    stamp = datetime.now()
    sizes = []
    for rows in args.rows:
        sizes.append(run_size(rows, args))
        threads = f"{args.threads} thread{'s' if args.threads > 1 else ''}"
        print(f"\n### {sizes[-1]['n_rows']:,} rows, k={args.k}, {threads}\n")
        print(table(sizes[-1], args.iters), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"compare-{stamp:%Y%m%d-%H%M%S}.json"
    settings = {k: v for k, v in vars(args).items()
                if k not in ("worker", "data", "init", "labels")}
    settings.update(data_dir=str(args.data_dir), out=str(args.out), seed=SEED,
                    init_sample=INIT_SAMPLE, warmup_rows=WARMUP_ROWS)
    path.write_text(json.dumps({"date": stamp.astimezone().isoformat(timespec="seconds"),
                                "command": sys.argv, "machine": info, "settings": settings,
                                "sizes": sizes}, indent=2))
    print(f"\nresults written to {path}")


if __name__ == "__main__":
    main()
