"""End to end: ``fastseg fit`` from Parquet to a labels Parquet vs a pandas + scikit-learn script.

    python benchmarks/end_to_end.py --rows 1000000,10000000 --k 8 [--threads T] [--repeat N]

The question a user asks is not "whose k-means loop is faster" (``compare.py`` answers that)
but "how long and how much RAM does the whole job take": start Python, read the Parquet file,
drop rows with nulls, standardise, cluster, write the labels. So both methods run as separate
processes and are timed from spawn to exit:

* **fastseg**: the CLI, ``python -m fastseg.cli fit DATA --k K --features ... --labels OUT
  --keep customer_id --seed 0 --overwrite --max-iter 20``.
* **pandas + scikit-learn**: the script a seed project would write (``seed_project`` below):
  ``pd.read_parquet``, ``dropna``, ``StandardScaler``, ``KMeans(n_init=1, max_iter=20,
  random_state=0)``, ``to_parquet``. It runs as ``--worker pandas`` of this file.

Peak RSS is ``ru_maxrss`` from ``os.wait4`` on each child. On Linux a child's ``ru_maxrss`` starts
at the *parent's* peak RSS (the address space it is spawned from), so the parent imports only the
standard library and never loads data: its peak (about 15 MB) is the floor of every measurement
and is stored in the results. Features, machine information and data generation come from
``--worker`` processes for the same reason. The pandas worker never imports fastseg, so its
RSS has no Numba or Polars in it.

Data: ``fastseg.datasets.write_customers(path, rows, seed=0)``, cached as
``benchmarks/data/customers_{rows}.parquet`` like ``compare.py``. One untimed run of each method
on a small file comes first (Numba's on-disk cache, imports), and the file is read once to put
it in the page cache, so neither method pays for the first disk read. Results and machine
information go to ``benchmarks/results/end_to_end-YYYYmmdd-HHMMSS.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 0
WARMUP_ROWS = 20_000
KEEP = "customer_id"
METHODS = {"fastseg": "fastseg CLI", "pandas": "pandas + scikit-learn"}
BASELINE = "pandas"
TARGET_SPEEDUP = 3.0  # issue tracker: fastseg >= 3x faster ...
TARGET_RSS = 0.25  # ... at <= 25 % of the peak RSS of the pandas script, on 10M rows
FIT_NOTE = re.compile(
    r"clustered ([\d,]+) rows into \d+ segments in ([\d.]+) s "
    r"\(inertia ([^,]+), (\d+) iterations\)"
)
LABELS_NOTE = re.compile(r"labels for ([\d,]+) rows written")


# ----- workers: everything that imports more than the standard library --------------------
def seed_project(path, out, k, features, max_iter, seed):
    """The pandas + scikit-learn script a seed project writes, with the time of each step."""
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    steps, last = {}, time.perf_counter()

    def step(name):
        nonlocal last
        now = time.perf_counter()
        steps[name] = now - last
        last = now

    df = pd.read_parquet(path)
    rows_in = len(df)
    step("read")
    df = df.dropna(subset=features)
    step("dropna")
    X = StandardScaler().fit_transform(df[features])
    step("scale")
    km = KMeans(n_clusters=k, n_init=1, max_iter=max_iter, random_state=seed).fit(X)
    step("kmeans")
    df["segment"] = km.labels_
    df[[KEEP, "segment"]].to_parquet(out)
    step("write")
    return {"steps": steps, "rows_in": rows_in, "rows_clustered": len(df),
            "n_iter": int(km.n_iter_), "inertia": float(km.inertia_)}


def vm_hwm_mb():
    """This process's own peak RSS (VmHWM) in MB, or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")) / 2**10
    except (OSError, StopIteration):
        return None


def pandas_worker(args):
    """Run ``seed_project`` (thread-limited if asked) and print its results as one JSON line."""
    features = args.features.split(",")
    if args.threads:
        import pyarrow as pa
        from threadpoolctl import threadpool_limits

        pa.set_cpu_count(args.threads)
        with threadpool_limits(limits=args.threads):
            out = seed_project(args.data, args.labels, args.k, features, args.max_iter, SEED)
    else:
        out = seed_project(args.data, args.labels, args.k, features, args.max_iter, SEED)
    print(json.dumps({**out, "vm_hwm_mb": vm_hwm_mb()}), flush=True)


def info_worker(_args):
    """FEATURES and machine information (imports fastseg, so never in the parent)."""
    import pandas
    import pyarrow
    from compare import machine_info  # benchmarks/compare.py, next to this file

    from fastseg.datasets import FEATURES

    machine = {**machine_info(), "pandas": pandas.__version__, "pyarrow": pyarrow.__version__}
    print(json.dumps({"features": list(FEATURES), "machine": machine}), flush=True)


def generate_worker(args):
    """Write the cached synthetic customers file."""
    from fastseg.datasets import write_customers

    write_customers(args.data, args.rows[0], seed=SEED)


def check_worker(args):
    """Do both labelings cover the same rows and agree (adjusted Rand index, not timed)?"""
    import polars as pl
    from sklearn.metrics import adjusted_rand_score

    fast = pl.read_parquet(args.data, columns=[KEEP, "segment"])
    pand = pl.read_parquet(args.labels, columns=[KEEP, "segment"])
    both = fast.drop_nulls("segment").join(pand, on=KEEP, how="inner", suffix="_pandas")
    print(json.dumps({
        "fastseg_rows_written": fast.height,
        "fastseg_rows_without_segment": fast["segment"].null_count(),
        "pandas_rows_written": pand.height,
        "rows_labelled_by_both": both.height,
        "adjusted_rand_index": float(adjusted_rand_score(
            both["segment"].to_numpy(), both["segment_pandas"].to_numpy())),
    }), flush=True)


WORKERS = {"pandas": pandas_worker, "info": info_worker, "generate": generate_worker,
           "check": check_worker}


# ----- parent: standard library only, so its small peak RSS is the floor ------------------
def parent_peak_mb():
    """The parent's own peak RSS in MB: every child's ru_maxrss starts at this value."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def run_measured(cmd, timeout, env=None, watch=None):
    """Run ``cmd`` to completion: wall seconds, peak RSS (MB, os.wait4), exit code, output.

    ``watch(pid, own_files, stop)``, if given, runs in a thread while the child runs (until the
    ``stop`` event is set); ``own_files`` are the (st_dev, st_ino) of the child's output files.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        killed, stop = threading.Event(), threading.Event()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)

        def kill():
            killed.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        own = {(s.st_dev, s.st_ino) for s in map(os.fstat, (out.fileno(), err.fileno()))}
        watcher = threading.Thread(target=watch, args=(proc.pid, own, stop)) if watch else None
        if watcher:
            watcher.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C: leave no child behind
            proc.kill()
            proc.wait()
            raise
        finally:
            stop.set()
            timer.cancel()
            if watcher:
                watcher.join()
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 2**10,
                "returncode": proc.returncode, "timed_out": killed.is_set(),
                "stdout": out.read(), "stderr": err.read()}


def worker_cmd(name, *extra):
    return [sys.executable, str(Path(__file__).resolve()), "--worker", name, *map(str, extra)]


def run_json(cmd, timeout):
    """Run a worker and return its JSON line; exit with its stderr if it fails."""
    res = run_measured(cmd, timeout)
    lines = [ln for ln in res["stdout"].splitlines() if ln.startswith("{")]
    if res["returncode"] or not lines:
        sys.exit(f"{' '.join(cmd)} failed ({res['returncode']}):\n{res['stderr'][-2000:]}")
    return {**json.loads(lines[-1]), "_run": res}


def customers(rows, args):
    """Path of the cached ``write_customers`` file for ``rows``, written (in a child) if new."""
    path = args.data_dir / f"customers_{rows}.parquet"
    if not path.exists():
        args.data_dir.mkdir(parents=True, exist_ok=True)
        print(f"writing {path} ...", flush=True)
        res = run_measured(worker_cmd("generate", "--rows", rows, "--data", path), args.timeout)
        if res["returncode"]:
            sys.exit(f"generating {path} failed:\n{res['stderr'][-2000:]}")
    return path


def warm_page_cache(path):
    """Read the file once, so that neither method pays for the first read from disk."""
    buf = bytearray(4 * 2**20)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass


def commands(path, out_dir, features, args):
    """The two measured commands and their environments, for one input file."""
    fast_out, pandas_out = out_dir / "labels-fastseg.parquet", out_dir / "labels-pandas.parquet"
    fast = [sys.executable, "-m", "fastseg.cli", "fit", str(path), "--k", str(args.k),
            "--features", ",".join(features), "--labels", str(fast_out), "--keep", KEEP,
            "--seed", str(SEED), "--overwrite", "--max-iter", str(args.max_iter)]
    # no --quiet: the notes on stderr carry n_iter; off a terminal the progress bar is silent
    pandas = worker_cmd("pandas", "--data", path, "--labels", pandas_out, "--k", args.k,
                        "--features", ",".join(features), "--max-iter", args.max_iter)
    env = dict(os.environ)
    if args.threads:
        fast += ["--threads", str(args.threads)]
        pandas += ["--threads", str(args.threads)]
        env["POLARS_MAX_THREADS"] = str(args.threads)  # fastseg's --threads sets Numba only
    return {"fastseg": (fast, env), "pandas": (pandas, env)}, fast_out, pandas_out


def measure(method, cmd, env, args):
    """One measured run of a method, with what it reported about its work."""
    res = run_measured(cmd, args.timeout, env)
    run = {"seconds": res["seconds"], "peak_rss_mb": res["peak_rss_mb"]}
    if res["returncode"]:
        why = "timed out" if res["timed_out"] else f"exit {res['returncode']}"
        tail = " | ".join(res["stderr"].strip().splitlines()[-3:])
        return {**run, "error": f"{why}: {tail}"}
    if method == "fastseg":
        fit, labels = FIT_NOTE.search(res["stderr"]), LABELS_NOTE.search(res["stderr"])
        if fit:
            run.update(rows_clustered=int(fit[1].replace(",", "")), fit_seconds=float(fit[2]),
                       inertia=float(fit[3]), n_iter=int(fit[4]))
        if labels:
            run["rows_written"] = int(labels[1].replace(",", ""))
    else:
        lines = [ln for ln in res["stdout"].splitlines() if ln.startswith("{")]
        run.update(json.loads(lines[-1]) if lines else {})
    return run


def warm_up(features, args):
    """One untimed run of each method on a small file: Numba cache, imports, .pyc files."""
    path = customers(WARMUP_ROWS, args)
    with tempfile.TemporaryDirectory(prefix="fastseg-e2e-warm-") as tmp:
        cmds, _, _ = commands(path, Path(tmp), features, args)
        for method, (cmd, env) in cmds.items():
            run = measure(method, cmd, env, args)
            if "error" in run:
                sys.exit(f"warm-up of {method} failed: {run['error']}")


def run_size(rows, features, args):
    """Best-of-``repeat`` runs of both methods (alternating) on ``rows`` customers."""
    path = customers(rows, args)
    warm_page_cache(path)
    with tempfile.TemporaryDirectory(prefix="fastseg-e2e-") as tmp:
        cmds, fast_out, pandas_out = commands(path, Path(tmp), features, args)
        runs = {m: [] for m in METHODS}
        for i in range(args.repeat):
            for method, (cmd, env) in cmds.items():
                run = measure(method, cmd, env, args)
                runs[method].append(run)
                shown = run.get("error") or (f"{run['seconds']:.2f} s, "
                                             f"{run['peak_rss_mb']:.0f} MB")
                print(f"  {rows:,} rows, run {i + 1}/{args.repeat}, {METHODS[method]}: "
                      f"{shown}", flush=True)
        ok = all("error" not in r for rs in runs.values() for r in rs)
        check = None
        if ok:
            check = run_json(worker_cmd("check", "--data", fast_out, "--labels", pandas_out),
                             args.timeout)
            check.pop("_run")
    return {"rows": rows, "file": str(path), "file_mb": path.stat().st_size / 2**20,
            "results": {m: summarise(rs) for m, rs in runs.items()}, "check": check}


def summarise(runs):
    """Best wall time and the largest peak RSS over the runs of one method."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return {"error": runs[-1]["error"], "runs": runs}
    best = min(good, key=lambda r: r["seconds"])
    return {**best, "peak_rss_mb": max(r["peak_rss_mb"] for r in good),
            "all_seconds": [r["seconds"] for r in runs], "runs": runs}


def table(size, args):
    """Markdown table and notes for one row count."""
    res = size["results"]
    base = res[BASELINE]
    lines = ["| method | wall s (best) | all runs s | speed-up (pandas s / s) | peak RSS MB "
             "| RSS ratio (MB / pandas MB) | n_iter | inertia |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for method, label in METHODS.items():
        r = res[method]
        if "error" in r:
            lines.append(f"| {label} | failed: {r['error']} | | | | | | |")
            continue
        ok = "error" not in base
        speed = f"{base['seconds'] / r['seconds']:.2f}x" if ok else "-"
        rss = f"{r['peak_rss_mb'] / base['peak_rss_mb']:.2f}" if ok else "-"
        runs = ", ".join(f"{s:.2f}" for s in r["all_seconds"])
        inertia = f"{r['inertia']:.6g}" if "inertia" in r else "-"
        lines.append(f"| {label} | {r['seconds']:.2f} | {runs} | {speed} | "
                     f"{r['peak_rss_mb']:.0f} | {rss} | {r.get('n_iter', '-')} | {inertia} |")
    fast = res["fastseg"]
    if "error" not in fast and "error" not in base:
        speed = base["seconds"] / fast["seconds"]
        share = fast["peak_rss_mb"] / base["peak_rss_mb"]
        lines.append(
            f"\ntargets (for 10M rows): fastseg >= {TARGET_SPEEDUP:g}x faster: {speed:.2f}x "
            f"({'met' if speed >= TARGET_SPEEDUP else 'not met'}); fastseg peak RSS <= "
            f"{TARGET_RSS:.0%} of pandas: {share:.0%} "
            f"({'met' if share <= TARGET_RSS else 'not met'})")
        if "fit_seconds" in fast:
            lines.append(f"\nfastseg, best run: fit {fast['fit_seconds']:.1f} s (the CLI's own "
                         f"timer, 1 decimal); everything else (start, imports, checks, labels "
                         f"pass and write) {fast['seconds'] - fast['fit_seconds']:.1f} s")
        if "steps" in base:
            steps = ", ".join(f"{k} {v:.2f}" for k, v in base["steps"].items())
            rest = base["seconds"] - sum(base["steps"].values())
            hwm = base.get("vm_hwm_mb")
            lines.append(f"\npandas, best run, seconds per step: {steps}; interpreter start "
                         f"and imports {rest:.2f}; its own VmHWM "
                         + (f"{hwm:.0f} MB" if hwm else "n/a"))
    c = size["check"]
    if c:
        lines.append(
            f"\nlabels: fastseg wrote {c['fastseg_rows_written']:,} rows "
            f"({c['fastseg_rows_without_segment']:,} with a null segment), pandas wrote "
            f"{c['pandas_rows_written']:,}; adjusted Rand index between the two on the "
            f"{c['rows_labelled_by_both']:,} rows both labelled: {c['adjusted_rand_index']:.4f}")
    return "\n".join(lines)


def int_list(text):
    return [int(v) for v in text.split(",") if v.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int_list, default=[1_000_000],
                   help="comma-separated customer counts (default 1000000)")
    p.add_argument("--k", type=int, default=8, help="clusters (default 8)")
    p.add_argument("--max-iter", type=int, default=20,
                   help="k-means iterations at most, both methods (default 20)")
    p.add_argument("--threads", type=int, default=None,
                   help="limit both methods to T threads (default: each library's default, "
                        "all cores)")
    p.add_argument("--repeat", type=int, default=2, help="runs per method, best kept (default 2)")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per run")
    p.add_argument("--data-dir", type=Path, default=HERE / "data",
                   help="cache of generated Parquet files (default benchmarks/data)")
    p.add_argument("--out", type=Path, default=HERE / "results",
                   help="folder for the JSON results (default benchmarks/results)")
    p.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--labels", help=argparse.SUPPRESS)
    p.add_argument("--features", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return WORKERS[args.worker](args)
    stamp = datetime.now()
    info = run_json(worker_cmd("info"), args.timeout)
    info.pop("_run")
    features, machine = info["features"], info["machine"]
    threads = f"{args.threads} threads" if args.threads else "default threads (all cores)"
    print(f"fastseg {machine['fastseg']}, pandas {machine['pandas']}, scikit-learn "
          f"{machine['scikit-learn']}, {machine['cpu_count']} CPUs ({machine['cpu_model']}); "
          f"k={args.k}, max_iter={args.max_iter}, {threads}, best of {args.repeat}", flush=True)
    warm_up(features, args)
    sizes = []
    for rows in args.rows:
        sizes.append(run_size(rows, features, args))
        print(f"\n### {rows:,} rows, k={args.k}, {threads}, best of {args.repeat}\n")
        print(table(sizes[-1], args), flush=True)
    floor = parent_peak_mb()
    print(f"\nwall s = spawn to exit of the process; peak RSS = ru_maxrss from os.wait4 (the "
          f"largest over the runs; floor: this parent's peak, {floor:.0f} MB)")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"end_to_end-{stamp:%Y%m%d-%H%M%S}.json"
    settings = {k: v for k, v in vars(args).items()
                if k not in ("worker", "data", "labels", "features")}
    settings.update(data_dir=str(args.data_dir), out=str(args.out), seed=SEED,
                    warmup_rows=WARMUP_ROWS, features=features,
                    parent_peak_rss_mb=floor)
    path.write_text(json.dumps({"date": stamp.astimezone().isoformat(timespec="seconds"),
                                "command": sys.argv, "machine": machine, "settings": settings,
                                "sizes": sizes}, indent=2))
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
