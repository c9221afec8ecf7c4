"""k-means|| against k-means++ as KMeans's initialisation: time to seed, iterations, final inertia.

    python benchmarks/init_compare.py                          # 1M rows, k = 8, 64, 256
    python benchmarks/init_compare.py --rows 10000000 --k 8 64 256
    python benchmarks/init_compare.py --real                   # small real sets, 10 seeds

Data: ``make_blobs`` with 8 features and 2k centres (so k is not the data's own number of
clusters), float32, in memory. For each k both inits fit ``fastseg.KMeans(k, random_state=s)``
with the same seeds, one after the other in one process (ratios from the same run hold on a
shared machine). Prints the median seconds of the init and of the whole fit, the mean
iterations and the mean final inertia of k-means|| relative to k-means++.
"""

import argparse
import statistics
import warnings

import numpy as np
from sklearn.datasets import make_blobs

import fastseg


def one_fit(X, k, init, seed):
    model = fastseg.KMeans(k, init=init, random_state=seed, max_iter=100).fit(X)
    return model.timings_["init"], sum(model.timings_.values()), model.n_iter_, model.inertia_


def real_sets():
    """scikit-learn's bundled real data sets and 20,000 synthetic customers, standardised."""
    import polars as pl
    from sklearn import datasets

    from fastseg.datasets import FEATURES, generate_batch

    for name in ("iris", "wine", "breast_cancer", "digits"):
        X = getattr(datasets, f"load_{name}")().data
        yield name, X
    frame = pl.from_arrow(generate_batch(20_000, seed=0))
    yield "customers", frame.select(FEATURES).drop_nulls().to_numpy()


def compare_real(seeds):
    """Mean final inertia of k-means|| relative to k-means++ over ``seeds`` seeds."""
    print(f"k-means|| vs k-means++ on real sets, standardised, mean over seeds 0..{seeds - 1}")
    print("set              k   inertia vs k-means++ (mean of per-seed ratios)")
    warnings.simplefilter("ignore")  # digits has constant pixels: said once per fit
    for name, X in real_sets():
        X = ((X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1)).astype(
            np.float32
        )
        for k in (3, 8, 16):
            ratios = [
                one_fit(X, k, "k-means||", s)[3] / one_fit(X, k, "k-means++", s)[3]
                for s in range(seeds)
            ]
            print(f"{name:15} {k:3}   {statistics.mean(ratios):8.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, nargs="+", default=[8, 64, 256])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--real", action="store_true", help="the small real sets (10 seeds)")
    args = parser.parse_args()
    if args.real:
        compare_real(10)
        return
    print(f"KMeans on {args.rows:,} x 8 float32 blobs, seeds 0..{args.seeds - 1}")
    print("   k  init        seed s  fit s  iterations  inertia vs k-means++")
    for k in args.k:
        X, _ = make_blobs(args.rows, n_features=8, centers=2 * k, random_state=k)
        X = X.astype(np.float32)
        one_fit(X[:20_000], k, "k-means||", 0)  # compile both paths first
        one_fit(X[:20_000], k, "k-means++", 0)
        runs = {init: [one_fit(X, k, init, s) for s in range(args.seeds)]
                for init in ("k-means++", "k-means||")}  # fmt: skip
        base = statistics.mean(r[3] for r in runs["k-means++"])
        for init, rs in runs.items():
            print(
                f"{k:4}  {init:10} {statistics.median(r[0] for r in rs):6.2f} "
                f"{statistics.median(r[1] for r in rs):6.2f}  "
                f"{statistics.mean(r[2] for r in rs):10.1f}  "
                f"{statistics.mean(r[3] for r in rs) / base:8.4f}"
            )


if __name__ == "__main__":
    main()
