"""What a newcomer waits for: a first ``fastseg demo``, a small ``fastseg fit``, a first fit in
a fresh Python process.

    python benchmarks/startup.py [--repeat 3] [--out benchmarks/results]

Every figure is the wall time of a fresh process (``sys.executable``), best of ``--repeat``:

* ``demo cold``: ``fastseg demo --quiet`` with an empty Numba cache (``NUMBA_CACHE_DIR`` set to
  a new temporary folder), as after a fresh install: every kernel it needs is compiled;
* ``demo warm``: the same again, the kernels now cached;
* ``fit 10k``: ``fastseg fit`` of 10,000 generated customers (8 features, k=8), warm cache;
* ``first fit`` and ``second fit``: in one process, after ``import fastseg`` and a look at
  ``fastseg.KMeans`` (which imports scikit-learn), two ``KMeans(8).fit`` of 1,000 x 8 float32
  rows: the first loads the cached kernels and starts Numba's threads, the second does not;
  ``import + first fit`` counts the imports too.

Writes ``OUT/startup-YYYYmmdd-HHMMSS.json``. Nothing asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime

from results_file import add_out_option, write_results

from fastseg import datasets

FEATURES = ",".join(datasets.FEATURES)  # (timed in the children; the parent only spawns them)
LIBRARY = """
import time, json
t0 = time.perf_counter()
import numpy as np
import fastseg
fastseg.KMeans
t1 = time.perf_counter()
X = np.random.default_rng(0).standard_normal((1000, 8)).astype(np.float32)
fastseg.KMeans(8, random_state=0).fit(X)
t2 = time.perf_counter()
fastseg.KMeans(8, random_state=1).fit(X)
t3 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "first": t2 - t1, "second": t3 - t2}))
"""


def wall(argv, env=None, cwd=None):
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed:\n{done.stderr}")
    return seconds, done.stdout


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="fresh processes per figure, best kept")
    add_out_option(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    stamp = datetime.now()
    fastseg = [sys.executable, "-m", "fastseg"]
    figures = {}
    with tempfile.TemporaryDirectory(prefix="fastseg-startup-") as folder:
        cold, warm = [], []
        for _ in range(args.repeat):  # each cold run gets a cache of its own
            env = dict(os.environ, NUMBA_CACHE_DIR=tempfile.mkdtemp(dir=folder))
            cold.append(wall([*fastseg, "demo", "--quiet"], env=env, cwd=folder)[0])
            warm.append(wall([*fastseg, "demo", "--quiet"], env=env, cwd=folder)[0])
        figures["demo cold"], figures["demo warm"] = min(cold), min(warm)
        data = os.path.join(folder, "c10k.parquet")
        wall([*fastseg, "generate", "--rows", "10000", "--out", data, "--quiet"])
        fit = [*fastseg, "fit", data, "--k", "8", "--features", FEATURES, "--quiet"]
        wall(fit)  # the kernels of this fit cached
        figures["fit 10k"] = min(wall(fit)[0] for _ in range(args.repeat))
        runs = [json.loads(wall([sys.executable, "-c", LIBRARY])[1]) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["first"])
        figures["first fit"], figures["second fit"] = best["first"], best["second"]
        figures["import + first fit"] = min(r["imports"] + r["first"] for r in runs)
    for name, seconds in figures.items():
        print(f"{name:<20} {seconds:6.2f} s")
    print(f"first fit - second fit: {figures['first fit'] - figures['second fit']:.2f} s")
    path = write_results(args, "startup", stamp, {"seconds": figures})
    print(f"written: {path}")


if __name__ == "__main__":
    main()
