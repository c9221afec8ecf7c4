"""``fastseg compare``: k-means beside the other algorithms on the same customers."""

import json

import click

from . import options as o


@o.command(
    "compare",
    short_help="compare k-means with k-prototypes, Gaussian mixtures, Ward and HDBSCAN",
    help="Fit every algorithm with the same preprocessing on all the rows, judge them on one "
    "uniform sample in k-means' space (silhouette, Davies-Bouldin, Calinski-Harabasz, "
    "agreement with k-means, stability of fits on two halves of the sample), with sizes, "
    "seconds, peak memory and BIC where defined, and recommend one with its reason. "
    "k-prototypes runs only with --categorical.",
    example="fastseg compare customers.parquet --features age,income,tenure_months,region "
    "--categorical region --k 6",
)
@o.inputs()
@click.option("--k", "k", type=o.POSITIVE, required=True, metavar="K", help="segments, e.g. 6")
@o.features
@o.preprocessing
@click.option(
    "--algorithms",
    type=o.COLUMNS,
    metavar="NAMES",
    help="which to compare (default all that apply): kmeans, kprototypes, gmm, ward, hdbscan",
)
@o.sample("rows of the sample the algorithms are judged on (default 20000), e.g. 50000", 20_000)
@o.seed()
@o.memory
@o.threads
@click.option("--json", "as_json", is_flag=True, help="print the comparison as JSON")
@o.quiet()
def compare(data, k, features, settings, algorithms, sample, seed, as_json, say, **run):
    from ..workflow.compare import compare as run_comparison

    result = run_comparison(
        data,
        k,
        columns=features,
        algorithms=algorithms,
        sample_size=sample,
        random_state=seed,
        settings=settings,
        **run,
    )
    if as_json:
        print(json.dumps(result.to_dict(), indent=1, allow_nan=False))
    else:
        say(f"judged on a sample of {result.sample_rows:,} rows")
        print(result.table())
