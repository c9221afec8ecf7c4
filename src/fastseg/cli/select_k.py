"""``fastseg select-k``: fit and score a range of k, and recommend one."""

import json

import click

from ..cluster import registry
from . import options as o


@o.command(
    "select-k",
    short_help="fit and score a range of k, and recommend one",
    help="Fit k-means for each k (data decoded once; the best of --n-init starts) and score it: "
    "inertia, silhouette (stratified sample), Davies-Bouldin, Calinski-Harabasz, and stability "
    "(agreement, adjusted Rand index, of fits on two halves of a 40,000-row sample). The knee "
    "of the inertia curve is the recommendation when its k is stable (index at least 0.75), "
    "else the best silhouette among the stable k.",
    example="fastseg select-k customers.parquet --k-range 2:12 "
    "--features age,income,tenure_months --sample 20000",
)
@o.inputs()
@o.k_range("values of k, e.g. 2:12 or 3,5,8")
@o.features
@o.preprocessing
@o.sample("rows the silhouette is taken on, stratified by segment (default 10000), e.g. 20000")
@o.seed()
@click.option(
    "--max-iter",
    type=o.POSITIVE,
    default=registry.by_name("lloyd").max_iter,
    metavar="N",
    help=f"Lloyd iterations (default {registry.by_name('lloyd').max_iter}), e.g. 50",
)
@click.option(
    "--n-init",
    type=o.POSITIVE,
    default=3,
    metavar="N",
    help="starts per k, the best kept (default 3), e.g. 5",
)
@o.memory
@o.threads
@click.option("--json", "as_json", is_flag=True, help="print the scores as JSON, e.g. for jq")
@o.quiet()
def select_k(data, k_range, features, settings, sample, seed, as_json, say, **run):
    from ..workflow import select_k as selection

    scores = selection.select_k(
        data,
        k_range,
        columns=features,
        sample_size=sample,
        random_state=seed,
        **settings.as_params(),
        **run,
    )
    if as_json:
        print(json.dumps(scores.to_dict(), indent=1))
    else:
        dropped = scores.n_dropped
        left_out = f" ({dropped:,} left out: missing features)" if dropped else ""
        say(f"scored {len(k_range)} values of k on {scores.n_rows:,} rows{left_out}")
        print(scores.table())
