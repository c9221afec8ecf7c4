"""fastseg vs scikit-learn: Lloyd KMeans and MiniBatchKMeans on 1M rows x 8 float32 features.

Two ways to run it (see ``benchmarks/README.md``):

    pytest benchmarks/ --benchmark-only          # pytest-benchmark tables, one group per case
    python benchmarks/bench_kmeans.py [--rows N] [--threads T]   # one Markdown table

Both time the same four fits on the same data, from the same initial centres:

* ``sklearn.cluster.KMeans(algorithm="lloyd")`` and ``fastseg.KMeans``: exactly ``MAX_ITER``
  Lloyd iterations (``tol=0`` and data that does not converge earlier; checked).
* ``sklearn.cluster.MiniBatchKMeans`` and ``fastseg.MiniBatchKMeans``: ``batch_size=4096``,
  same seed, the same number of mini-batch steps: ``max_iter=MINIBATCH_EPOCHS`` (1) and
  ``max_no_improvement=None``, so both run exactly ``MINIBATCH_EPOCHS * rows // 4096`` steps
  (244 at 1M rows) with no early stop, then label every row. The two libraries draw their
  batches differently (scikit-learn samples with replacement, fastseg shuffles epochs), so their
  inertias are close, not equal.

Each fit is timed whole (input validation, decode pass, iterations, final labels) after one
untimed warm-up fit, so Numba's JIT compilation is never measured. Threads are set the same way
for both libraries: every timed fit runs inside ``threadpool_limits(limits=T)`` (scikit-learn's
OpenMP and BLAS pools) and fastseg also gets ``n_threads=T`` (its Numba pool).

Nothing here asserts on time. The Lloyd results are checked for correctness instead: fastseg's
labels must equal those of scikit-learn run on the same data upcast to float64, and agree with
scikit-learn's float32 run on all but a few near-tie rows (scikit-learn keeps float32 centres and
uses float32 distances on float32 input; fastseg accumulates in float64).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pytest
from sklearn.cluster import KMeans as SkKMeans
from sklearn.cluster import MiniBatchKMeans as SkMiniBatchKMeans
from sklearn.cluster import kmeans_plusplus
from sklearn.datasets import make_blobs
from threadpoolctl import threadpool_limits

import fastseg

# ----- the benchmark case ---------------------------------------------------------------------
N_ROWS = int(os.environ.get("FASTSEG_BENCH_ROWS", 1_000_000))
N_FEATURES = 8
N_CLUSTERS = 8
# Blobs with centres in the default box (-10, 10) and std 5 overlap a bit: Lloyd from the
# k-means++ start below needs 32 iterations to converge strictly at 1M rows, so 20 are all run.
CLUSTER_STD = 5.0
SEED = 0
MAX_ITER = 20
BATCH_SIZE = 4096
MINIBATCH_EPOCHS = 1  # mini-batch max_iter: passes' worth of batches (no early stopping)
ROUNDS = 3
WARMUP_ROUNDS = 1

# Correctness guards (Lloyd), not timing assertions.
MAX_FLOAT32_LABEL_MISMATCH = 1e-4  # share of rows whose label may differ from sklearn float32
INERTIA_RTOL = 1e-5  # sklearn's float32 inertia vs fastseg's float64 one


def default_threads():
    return os.cpu_count() or 1


def thread_counts(threads):
    """Always single-threaded, plus ``threads`` when that is more."""
    return sorted({1, max(1, int(threads))})


def make_data(n_rows=N_ROWS):
    """float32 blobs (C order) and float32 initial centres shared by every method."""
    X, _ = make_blobs(n_samples=n_rows, n_features=N_FEATURES, centers=N_CLUSTERS,
                      cluster_std=CLUSTER_STD, random_state=SEED)
    X = np.ascontiguousarray(X, dtype=np.float32)
    init, _ = kmeans_plusplus(X, N_CLUSTERS, random_state=SEED)
    return X, np.ascontiguousarray(init, dtype=np.float32)


# ----- the four timed fits (each returns the fitted estimator) --------------------------------
def fit_sklearn_lloyd(X, init, threads):
    return SkKMeans(n_clusters=N_CLUSTERS, init=init, n_init=1, max_iter=MAX_ITER, tol=0.0,
                    algorithm="lloyd", random_state=SEED).fit(X)


def fit_fastseg_kmeans(X, init, threads):
    return fastseg.KMeans(n_clusters=N_CLUSTERS, init=init, n_init=1, max_iter=MAX_ITER,
                          tol=0.0, random_state=SEED, n_threads=threads).fit(X)


def fit_sklearn_minibatch(X, init, threads):
    return SkMiniBatchKMeans(n_clusters=N_CLUSTERS, init=init, n_init=1, batch_size=BATCH_SIZE,
                             max_iter=MINIBATCH_EPOCHS, max_no_improvement=None,
                             random_state=SEED).fit(X)


def fit_fastseg_minibatch(X, init, threads):
    return fastseg.MiniBatchKMeans(n_clusters=N_CLUSTERS, init=init, n_init=1,
                                   batch_size=BATCH_SIZE, max_iter=MINIBATCH_EPOCHS,
                                   max_no_improvement=None, random_state=SEED,
                                   n_threads=threads).fit(X)


def minibatch_steps(n_rows):
    return max(1, MINIBATCH_EPOCHS * n_rows // BATCH_SIZE)


METHODS = {
    # key: (label in the table, fit function)
    ("lloyd", "sklearn"): ("sklearn KMeans lloyd", fit_sklearn_lloyd),
    ("lloyd", "fastseg"): ("fastseg KMeans", fit_fastseg_kmeans),
    ("minibatch", "sklearn"): ("sklearn MiniBatchKMeans", fit_sklearn_minibatch),
    ("minibatch", "fastseg"): ("fastseg MiniBatchKMeans", fit_fastseg_minibatch),
}


def lloyd_float64_reference(X, init):
    """scikit-learn Lloyd on the same rows upcast to float64: what fastseg must match exactly."""
    return SkKMeans(n_clusters=N_CLUSTERS, init=init.astype(np.float64), n_init=1,
                    max_iter=MAX_ITER, tol=0.0, algorithm="lloyd",
                    random_state=SEED).fit(X.astype(np.float64))


def check_lloyd(fs, sk32, sk64):
    """Assert fastseg's Lloyd result matches scikit-learn's; return the float32 label mismatch."""
    n = fs.labels_.shape[0]
    assert sk32.n_iter_ == MAX_ITER, f"sklearn stopped after {sk32.n_iter_} iterations"
    assert fs.n_iter_ == sk32.n_iter_, f"n_iter_: fastseg {fs.n_iter_}, sklearn {sk32.n_iter_}"
    assert sk64.n_iter_ == fs.n_iter_
    differ64 = int(np.count_nonzero(fs.labels_ != sk64.labels_))
    assert differ64 == 0, f"{differ64} labels differ from sklearn (float64 reference)"
    differ32 = int(np.count_nonzero(fs.labels_ != sk32.labels_))
    assert differ32 <= MAX_FLOAT32_LABEL_MISMATCH * n, (
        f"{differ32} of {n} labels differ from sklearn (float32)"
    )
    assert abs(fs.inertia_ - sk32.inertia_) <= INERTIA_RTOL * sk32.inertia_, (
        f"inertia: fastseg {fs.inertia_}, sklearn {sk32.inertia_}"
    )
    assert abs(fs.inertia_ - sk64.inertia_) <= 1e-9 * sk64.inertia_
    return differ32


def describe(est):
    """inertia, n_iter (and n_steps for mini-batch) of a fitted estimator, for reports."""
    info = {"inertia": float(est.inertia_), "n_iter": int(est.n_iter_)}
    if hasattr(est, "n_steps_"):
        info["n_steps"] = int(est.n_steps_)
    return info


# ----- pytest-benchmark -----------------------------------------------------------------------
THREADS = thread_counts(int(os.environ.get("FASTSEG_BENCH_THREADS", default_threads())))


@pytest.fixture(scope="module")
def blobs():
    return make_data(N_ROWS)


@pytest.fixture(scope="module")
def lloyd_references(blobs):
    """Untimed scikit-learn Lloyd fits, float32 and float64, for the correctness guard."""
    X, init = blobs
    return fit_sklearn_lloyd(X, init, None), lloyd_float64_reference(X, init)


def _run(benchmark, algo, impl, blobs, threads):
    X, init = blobs
    label, fit = METHODS[(algo, impl)]
    benchmark.group = (f"{algo}: {X.shape[0]:,} rows x {X.shape[1]}, k={N_CLUSTERS}, "
                       f"{threads} thread{'s' if threads > 1 else ''}")
    benchmark.name = f"{label} [{threads}t]"
    with threadpool_limits(limits=threads):
        est = benchmark.pedantic(fit, args=(X, init, threads), rounds=ROUNDS,
                                 warmup_rounds=WARMUP_ROUNDS, iterations=1)
    benchmark.extra_info.update(describe(est), rows=X.shape[0], threads=threads)
    return est


@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"{t}t")
@pytest.mark.parametrize("impl", ["sklearn", "fastseg"])
def test_lloyd(benchmark, blobs, lloyd_references, impl, threads):
    est = _run(benchmark, "lloyd", impl, blobs, threads)
    sk32, sk64 = lloyd_references
    if impl == "fastseg":
        benchmark.extra_info["labels_differing_from_sklearn_float32"] = check_lloyd(est, sk32,
                                                                                   sk64)
    else:
        assert est.n_iter_ == MAX_ITER


@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"{t}t")
@pytest.mark.parametrize("impl", ["sklearn", "fastseg"])
def test_minibatch(benchmark, blobs, impl, threads):
    est = _run(benchmark, "minibatch", impl, blobs, threads)
    n = blobs[0].shape[0]
    assert est.n_steps_ == minibatch_steps(n)  # same work for both libraries
    assert est.labels_.shape == (n,)
    assert np.isfinite(est.inertia_)


# ----- script mode ----------------------------------------------------------------------------
def best_of(fit, X, init, threads, rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS):
    """Best wall time of ``rounds`` fits after ``warmup_rounds`` untimed ones, and the last fit."""
    with threadpool_limits(limits=threads):
        for _ in range(warmup_rounds):
            fit(X, init, threads)
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            est = fit(X, init, threads)
            times.append(time.perf_counter() - start)
    return min(times), est


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=N_ROWS,
                        help="rows of data (default %(default)s)")
    parser.add_argument("--threads", type=int, default=default_threads(),
                        help="thread count compared with 1 thread (default: all cores, "
                             "%(default)s)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    X, init = make_data(args.rows)
    threads = thread_counts(args.threads)
    print(f"data: make_blobs {X.shape[0]:,} rows x {X.shape[1]} float32, {N_CLUSTERS} centres, "
          f"cluster_std={CLUSTER_STD}, random_state={SEED}; init: kmeans_plusplus "
          f"(random_state={SEED}), shared by all methods")
    print(f"lloyd: max_iter={MAX_ITER}, tol=0; minibatch: batch_size={BATCH_SIZE}, "
          f"max_iter={MINIBATCH_EPOCHS}, max_no_improvement=None, random_state={SEED}; "
          f"seconds = best of {ROUNDS} after {WARMUP_ROUNDS} warm-up; "
          f"threads via threadpool_limits(limits=T) + fastseg n_threads=T")
    print(f"numpy {np.__version__}, scikit-learn {sys.modules['sklearn'].__version__}, "
          f"fastseg {fastseg.__version__}, {os.cpu_count()} CPUs\n", flush=True)

    results = {}  # (algo, impl, threads) -> (seconds, estimator)
    for t in threads:
        for (algo, impl), (_, fit) in METHODS.items():
            results[(algo, impl, t)] = best_of(fit, X, init, t)

    print("| method | threads | seconds | ratio vs sklearn lloyd | inertia | n_iter |")
    print("|---|---:|---:|---:|---:|---:|")
    for t in threads:
        base = results[("lloyd", "sklearn", t)][0]
        for (algo, impl), (label, _) in METHODS.items():
            sec, est = results[(algo, impl, t)]
            info = describe(est)
            n_iter = str(info["n_iter"])
            if "n_steps" in info:
                n_iter += f" ({info['n_steps']} steps)"
            print(f"| {label} | {t} | {sec:.3f} | {base / sec:.2f} | {info['inertia']:.10g} "
                  f"| {n_iter} |")

    if len(threads) > 1:
        t1, tn = threads[0], threads[-1]
        print(f"\n| method | seconds, {t1} thread | seconds, {tn} threads | speed-up |")
        print("|---|---:|---:|---:|")
        for (algo, impl), (label, _) in METHODS.items():
            a, b = results[(algo, impl, t1)][0], results[(algo, impl, tn)][0]
            print(f"| {label} | {a:.3f} | {b:.3f} | {a / b:.2f} |")

    for t in threads:
        for impl in ("sklearn", "fastseg"):
            assert results[("minibatch", impl, t)][1].n_steps_ == minibatch_steps(X.shape[0])
    sk64 = lloyd_float64_reference(X, init)
    for t in threads:
        differ32 = check_lloyd(results[("lloyd", "fastseg", t)][1],
                               results[("lloyd", "sklearn", t)][1], sk64)
        print(f"\nlloyd check ({t} thread{'s' if t > 1 else ''}): n_iter_ equal ({MAX_ITER}); "
              f"fastseg labels == sklearn float64 labels on all {X.shape[0]:,} rows; "
              f"{differ32} rows differ from sklearn float32 (near ties)", end="")
    print(f"\n\ntotal wall time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
