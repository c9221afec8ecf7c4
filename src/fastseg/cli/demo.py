"""``fastseg demo``: generate customers, segment them, print the segments."""

import os
import tempfile

import click

from .. import interrupts
from ..preprocess.settings import CLI_DEFAULTS
from . import options as o


@o.command(
    "demo",
    short_help="generate customers, segment them, print the segments",
    help="The main job on a built-in default: 200,000 synthetic customers, k=6.",
    example="fastseg demo --rows 1000000",
)
@click.option(
    "--rows",
    type=o.POSITIVE,
    default=200_000,
    metavar="N",
    help="customers to generate (default 200,000), e.g. 1000000",
)
@click.option("--k", type=o.POSITIVE, default=6, metavar="K", help="segments (default 6), e.g. 8")
@o.seed()
@o.quiet("no progress bar")
def demo(rows, k, seed, say):
    """Generate customers, segment them, show the segments and how well they match the truth."""
    from ..datasets.customers import FEATURES, write_customers
    from ..workflow.fit import fit_segments
    from ..workflow.segments import segment_summary

    with tempfile.TemporaryDirectory(prefix="fastseg-demo-") as folder:
        path = os.path.join(folder, "customers.parquet")
        with interrupts.preliminary():  # the data to segment, not the demo's result
            write_customers(path, rows, seed=seed)
        print(
            f"generated {rows:,} synthetic customers "
            f"({', '.join(FEATURES)}; a few nulls; hidden true segments)"
        )
        result = fit_segments(
            path, k, features=list(FEATURES), settings=CLI_DEFAULTS, seed=seed, n_init=3
        )
        print(
            f"segmented them into {k} segments in {result.seconds:.2f} s "
            f"({result.model.n_rows_dropped_:,} rows with missing values left out)\n"
        )
        print(segment_summary(result.model))
        ari = _agreement_with_truth(path, result.model, FEATURES)
        print(f"\nagreement with the hidden true segments (adjusted Rand index): {ari:.3f}")
    features = ",".join(FEATURES)
    print(  # --k auto: the k select-k recommends on that data, whatever the demo's --k
        "\nnext: fastseg generate --rows 1000000 --out customers.parquet\n"
        f"      fastseg select-k customers.parquet --features {features}\n"
        f"      fastseg fit customers.parquet --k auto --features {features} "
        "--model model.json --labels labeled.parquet"
    )


def _agreement_with_truth(path, model, features):
    import polars as pl

    from ..metrics.scores import adjusted_rand_score  # (scikit-learn's took a second to import)

    truth = pl.scan_parquet(path).drop_nulls(list(features)).select("true_segment").collect()
    return adjusted_rand_score(truth["true_segment"].to_numpy(), model.labels_)
