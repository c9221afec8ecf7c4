"""The Dask backend against the local engine: the same 20 Lloyd iterations on 1 and 2 workers.

    python benchmarks/dask_scaleout.py                      # 10M rows x 8 float32, 8 files
    python benchmarks/dask_scaleout.py --rows 2000000 --out /tmp   # quick check

Data: 8 Gaussian blobs in 8 float32 features (centres uniform in [-3, 3], standard deviation
2: the blobs overlap, so labels keep changing for more than 20 iterations), ``--rows`` rows
cut into 8 Parquet files ``benchmarks/data/dask_scaleout_{rows}/part-{i}.parquet`` (made once,
then reused), plus a 20,000-row file for the warm-up fits. Columns ``f0`` .. ``f7``, no
missing values.

Every fit is ``fastseg.KMeans(8, init=C, n_init=1, max_iter=ITERS, tol=0)`` on the list of
files: C is the first 8 rows of the first file (the same start for every run), and with
``tol=0`` a fit stops before ITERS only on strict convergence (the n_iter column says). In
this order, one process, each timed around ``fit`` only:

  (a) local, ``algorithm="lloyd"`` (the reference) and ``algorithm="auto"`` (Hamerly bounds);
  (b) ``LocalCluster(n_workers=1, threads_per_worker=1, processes=True)``, ``backend="dask"``,
      ``persist=True`` then ``persist=False``;
  (c) the same with ``n_workers=2``.

Each cluster first runs an untimed warm-up fit (persist both ways) on the small file, so the
workers' Numba cache load is not timed; the local engine gets one too. The local fits use
Numba's default threads (all cores), each Dask worker one thread.

Prints a table (seconds, ratio to the local lloyd fit from this run, n_iter, inertia, centres
``np.array_equal`` to the local lloyd fit's; with ``--repeat R`` each run is fitted R times in
a row and the fastest kept: the machine is shared), the Dask runs' ``timings_`` split, the 2-worker
persist run's time per pass and bytes per pass, and a *projection* to N machines from a simple
model (see ``projection``). Results and machine information go to
``OUT/dask_scaleout-YYYYmmdd-HHMMSS.json``.
"""

import argparse
import json
import logging
import math
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
K = 8
FEATURES = 8
FILES = 8
SEED = 0
WARMUP_ROWS = 20_000


def blobs(rows, rng, centres):
    """``rows`` float32 rows drawn from the Gaussian blobs around ``centres`` (std 2)."""
    which = rng.integers(0, centres.shape[0], rows)
    x = rng.standard_normal((rows, centres.shape[1]), dtype=np.float32)
    x *= 2.0
    x += centres[which].astype(np.float32)
    return x


def write_part(path, x):
    table = pa.table({f"f{j}": x[:, j] for j in range(x.shape[1])})
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.rename(path)


def data_files(rows):
    """The 8 Parquet files of ``rows`` rows and the warm-up file (made once, then reused)."""
    rng = np.random.default_rng(SEED)
    centres = rng.uniform(-3, 3, (K, FEATURES))
    folder = HERE / "data" / f"dask_scaleout_{rows}"
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [rows // FILES + (i < rows % FILES) for i in range(FILES)]
    paths = [folder / f"part-{i}.parquet" for i in range(FILES)]
    for i, (path, n) in enumerate(zip(paths, sizes, strict=True)):
        if not path.exists():
            write_part(path, blobs(n, np.random.default_rng([SEED, i + 1]), centres))
    warm = HERE / "data" / f"dask_scaleout_warm_{WARMUP_ROWS}.parquet"
    if not warm.exists():
        write_part(warm, blobs(WARMUP_ROWS, np.random.default_rng([SEED, 0]), centres))
    return [str(p) for p in paths], str(warm)


def initial_centres(path):
    """The first K rows of the first file, float64: the start of every fit."""
    table = pq.read_table(path).slice(0, K)
    return np.column_stack([table.column(j).to_numpy() for j in range(FEATURES)]).astype(np.float64)


def model(init, iters, algorithm="lloyd"):
    import fastseg

    return fastseg.KMeans(K, init=init, n_init=1, max_iter=iters, tol=0, algorithm=algorithm)


REPEAT = 1  # fits per run, the fastest kept (--repeat)


def timed(name, fit):
    """Run ``fit()`` (returns the fitted estimator) REPEAT times; the fastest, timed."""
    best = None
    for _ in range(REPEAT):
        start = time.perf_counter()
        est = fit()
        seconds = time.perf_counter() - start
        if best is None or seconds < best["seconds"]:
            best = {
                "run": name,
                "seconds": seconds,
                "n_iter": int(est.n_iter_),
                "inertia": float(est.inertia_),
                "timings": {k: float(v) for k, v in est.timings_.items()},
                "centers": est.cluster_centers_,
            }
        print(f"  {name}: {seconds:.2f} s", flush=True)
    return best


def dask_runs(paths, warm, init, iters, n_workers):
    from distributed import Client, LocalCluster

    runs = []
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        for persist in (True, False):  # warm-up: the workers load Numba's cache
            model(init, 3).fit(warm, backend="dask", client=client, persist=persist)
        for persist in (True, False):
            name = f"dask {n_workers} worker{'s' if n_workers > 1 else ''}, persist={persist}"
            runs.append(
                timed(
                    name,
                    lambda p=persist: model(init, iters).fit(
                        paths, backend="dask", client=client, persist=p
                    ),
                )
            )
            runs[-1].update(workers=n_workers, persist=persist)
    return runs


def per_pass(run):
    """Seconds per pass over the data in the iterations phase: n_iter E-steps and the final
    inertia pass."""
    return run["timings"]["iterations"] / (run["n_iter"] + 1)


def projection(rows, fragments, t1, t2, passes):
    """A simple model, not a measurement: one pass on N workers takes
    rows / (min(N, F) * rate) + overhead, where rate = rows / t1 (one worker's rows per second,
    from the 1-worker persist run), overhead = t2 - t1 / 2 (what 2 workers lose to merging,
    scheduling and this machine's shared cores), and F the fragments (no more tasks per pass).
    The model puts the overhead on N = 1 too, which the 1-worker run it is taken from lacks."""
    rate = rows / t1
    overhead = t2 - t1 / 2
    out = []
    for n in (1, 2, 4, 8, 16, 32):
        t = rows / (min(n, fragments) * rate) + overhead
        out.append({"machines": n, "pass_s": t, "iterations_s": passes * t})
    return rate, overhead, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--iters", type=int, default=20, help="max_iter of every fit (tol=0)")
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "results",
        help="folder for the JSON results (default benchmarks/results)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="fits per run, one after the other, the fastest kept (default 1)",
    )
    args = parser.parse_args()
    global REPEAT
    REPEAT = args.repeat

    import numba

    from fastseg import config

    paths, warm = data_files(args.rows)
    init = initial_centres(paths[0])
    fragments = math.ceil(args.rows / config.FRAGMENT_ROWS)
    print(
        f"KMeans k={K} on {args.rows:,} x {FEATURES} float32 Gaussian blobs in {FILES} Parquet "
        f"files ({fragments} fragments of {config.FRAGMENT_ROWS:,} rows), init = first {K} "
        f"rows, max_iter={args.iters}, tol=0, fastest of {args.repeat}; local fits use "
        f"{numba.get_num_threads()} Numba threads, Dask workers 1 thread each",
        flush=True,
    )

    model(init, 3).fit(warm)  # warm-up: Numba's cache in this process
    model(init, 3, "auto").fit(warm)
    runs = [
        timed("local lloyd", lambda: model(init, args.iters).fit(paths)),
        timed("local auto", lambda: model(init, args.iters, "auto").fit(paths)),
    ]
    runs += dask_runs(paths, warm, init, args.iters, 1)
    runs += dask_runs(paths, warm, init, args.iters, 2)

    base = runs[0]
    print(
        f"\n{'run':32} {'seconds':>8} {'vs local lloyd':>14} {'n_iter':>6} "
        f"{'inertia':>20}  same centres"
    )
    for r in runs:
        r["ratio"] = r["seconds"] / base["seconds"]
        r["same_centers"] = bool(np.array_equal(r["centers"], base["centers"]))
        print(
            f"{r['run']:32} {r['seconds']:8.2f} {r['ratio']:13.2f}x {r['n_iter']:6} "
            f"{r['inertia']:20.10g}  {r['same_centers']}"
        )

    print("\ntimings_ (s):")
    for r in runs:
        split = ", ".join(f"{k} {v:.2f}" for k, v in r["timings"].items())
        print(f"  {r['run']:32} {split}")

    one = next(r for r in runs if r.get("workers") == 1 and r["persist"])
    two = next(r for r in runs if r.get("workers") == 2 and r["persist"])
    t1, t2 = per_pass(one), per_pass(two)
    per_fragment = K * FEATURES * 8 + K * 8 + 16
    passes = two["n_iter"] + 1
    print(
        f"\n2 workers, persist=True: fit {two['seconds']:.2f} s, of which iterations "
        f"{two['timings']['iterations']:.2f} s for {two['n_iter']} E-step passes + 1 inertia "
        f"pass = {t2 * 1000:.1f} ms per pass (1 worker: {t1 * 1000:.1f} ms per pass)"
    )
    print(
        f"bytes sent back per pass: {fragments} fragments x (k*d*8 + k*8 + 16 = "
        f"{per_fragment} B) = {fragments * per_fragment:,} B, whatever the number of workers"
    )
    rate, overhead, proj = projection(args.rows, fragments, t1, t2, passes)
    print(
        f"\nPROJECTION (a simple model, not measured): per pass = rows / (min(N, {fragments} "
        f"fragments) x {rate:,.0f} rows/s per worker) + {overhead * 1000:.1f} ms merge and "
        f"scheduling overhead (2-worker pass - half the 1-worker pass, on this machine)"
    )
    measured = {1: t1, 2: t2}
    print(f"  {'N machines':>10} {'s per pass':>10} {f'{passes} passes s':>14}  measured per pass")
    for p in proj:
        seen = f"{measured[p['machines']]:.3f}" if p["machines"] in measured else ""
        print(f"  {p['machines']:10} {p['pass_s']:10.3f} {p['iterations_s']:14.2f}  {seen}")

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now()
    path = args.out / f"dask_scaleout-{stamp:%Y%m%d-%H%M%S}.json"
    try:
        sys.path.insert(0, str(HERE))
        from compare import machine_info

        info = machine_info()
    except ImportError:
        info = {}
    import dask
    import distributed

    info.update(dask=dask.__version__, distributed=distributed.__version__)
    for r in runs:
        r["centers"] = r["centers"].tolist()
    path.write_text(
        json.dumps(
            {
                "date": stamp.astimezone().isoformat(timespec="seconds"),
                "command": sys.argv,
                "machine": info,
                "settings": {
                    "rows": args.rows,
                    "k": K,
                    "features": FEATURES,
                    "files": FILES,
                    "fragments": fragments,
                    "iters": args.iters,
                    "repeat": args.repeat,
                    "seed": SEED,
                    "init": init.tolist(),
                    "warmup_rows": WARMUP_ROWS,
                },
                "runs": runs,
                "per_pass_s": {"1 worker": t1, "2 workers": t2},
                "bytes_per_pass": fragments * per_fragment,
                "projection": {"rate_rows_per_s": rate, "overhead_s": overhead, "machines": proj},
            },
            indent=2,
        )
    )
    print(f"\nresults written to {path}")


if __name__ == "__main__":
    main()
