"""``fastseg fit``: segment the rows of data files and print the segments, largest first."""

import click

from ..cluster import registry
from . import options as o

MAX_ITER = {name: registry.by_name(name).max_iter for name in registry.NAMES}


@o.command(
    "fit",
    short_help="segment customers in Parquet, CSV or NDJSON files",
    help="Cluster the rows of Parquet (the fast path), CSV or NDJSON file(s) and print the "
    "segments, largest first.",
    example="fastseg fit customers.parquet --k 6 --features age,income,tenure_months "
    "--model model.json --labels labeled.parquet",
)
@o.inputs()
@click.option(
    "--k",
    type=o.K,
    required=True,
    metavar="K",
    help="number of segments, e.g. 6; or 'auto': run select-k over --k-range and take "
    "the knee of its inertia curve",
)
@o.k_range(
    "values of k that --k auto tries (default 2:12), e.g. 3:8",
    default="2:12",
)
@click.option(
    "--align-to",
    metavar="MODEL",
    help="a previous model file of the same features: its segment numbers are kept "
    "(segments paired by centre distance), e.g. --align-to last_quarter.json",
)
@o.features
@o.preprocessing
@click.option(
    "--algorithm",
    type=click.Choice(registry.NAMES),
    default=registry.NAMES[0],
    help="; ".join(f"{a.name}: {a.summary}" for a in registry.ALGORITHMS)
    + f" (default {registry.NAMES[0]})",
)
@o.seed()
@click.option(
    "--init",
    type=click.Choice(["k-means++", "random", "k-means||"]),
    default="k-means++",
    help="initial centres: k-means++ on a sample (default), random rows, or k-means|| "
    "(Bahmani et al.: seeded from all the rows in 5 passes)",
)
@click.option(
    "--n-init",
    type=o.POSITIVE,
    default=1,
    metavar="N",
    help="initialisations tried, the best kept (default 1), e.g. 5",
)
@click.option(
    "--max-iter",
    type=o.POSITIVE,
    metavar="N",
    help=f"Lloyd iterations (default {MAX_ITER['lloyd']}) or mini-batch passes over the data "
    f"(default {MAX_ITER['minibatch']}), EM or k-prototypes iterations, e.g. 50",
)
@o.memory
@o.threads
@o.cluster
@click.option("--model", metavar="FILE", help="write the model (JSON) here, e.g. model.json")
@click.option(
    "--labels",
    metavar="FILE",
    help="write the input rows plus a 'segment' column here, e.g. labeled.parquet",
)
@click.option(
    "--keep",
    type=o.COLUMNS,
    metavar="COLUMNS",
    help="with --labels: only these input columns, e.g. customer_id",
)
@o.quiet_overwrite
def fit(data, k, *, align_to, labels, model, say, workers, scheduler, persist, **request):
    from ..distributed.cluster import connected
    from ..workflow.fit import check_dask_request, fit_segments
    from ..workflow.segments import segment_summary

    if workers is not None or scheduler is not None:
        check_dask_request(k, request["algorithm"])
    with connected(workers, scheduler, persist, say) as cluster:
        result = fit_segments(
            data,
            k,
            align_to=align_to,
            labels=labels,
            model=model,
            say=say,
            cluster=cluster,
            **request,
        )
    for note in fit_notes(result, align_to):
        say(note)
    print(segment_summary(result.model))
    if labels:
        say(labels_written(result.rows_written, result.rows_unlabelled, labels))
    if model:
        say(f"model written to {model}")


def fit_notes(result, align_to=None):
    """What a fit did, a line each: the alignment, the fit, the rows filled or dropped."""
    fitted = result.model
    if result.moved is not None:
        yield (
            f"segments numbered as in {align_to}: their centres moved "
            f"{result.moved.min():.2f}-{result.moved.max():.2f} "
            "(in standard deviations when scaled)"
        )
    if getattr(fitted, "gamma_", None) is not None:  # k-prototypes: a cost, not an inertia
        measure = f"cost {fitted.cost_:.6g} with gamma {fitted.gamma_:.4g}"
    else:
        measure = f"inertia {fitted.inertia_:.6g}"
    yield (
        f"clustered {int(fitted._fit_sizes().sum()):,} rows into {fitted.n_clusters} segments in "
        f"{result.seconds:.1f} s ({measure}, {fitted.n_iter_} iterations)"
    )
    if getattr(fitted, "n_imputed_", 0):
        yield (
            f"filled {fitted.n_imputed_:,} missing feature values with the feature "
            f"{fitted.missing}s"
        )
    if fitted.n_rows_dropped_:
        yield (
            f"dropped {fitted.n_rows_dropped_:,} rows with missing values in the features "
            "(they get no segment)"
        )


def labels_written(written, unlabelled, out):
    """The note on a labels file just written (fit and predict)."""
    note = f" ({unlabelled:,} without a segment: missing features)" if unlabelled else ""
    return f"labels for {written:,} rows written to {out}{note}"
