"""``fastseg report``: a one-file HTML report with plots."""

import click

from . import options as o


@o.command(
    "report",
    short_help="write a one-file HTML report with plots",
    help="One self-contained HTML file for the people who will use the segments: a header "
    "(data, rows used and left out, features, preprocessing, k and how it was chosen, date, "
    "version); the inertia, silhouette, Davies-Bouldin and Calinski-Harabasz scores by k with "
    "the model's k and the knee marked; segment sizes; a centroid z-score heat map; a 2-D PCA "
    "scatter of a sample; feature distributions by segment; the profile table. Segments are "
    "named by their labels and keep one colour in every plot. A model fitted with --k auto "
    "shows the scores its k was chosen from (nothing is scored again); for a model whose k "
    "was given, k is scored over --k-range on DATA. With --drift NEW, a last section compares "
    "a later period with DATA (the earlier one): the verdict (stable / watch / retrain) and "
    "its reasons, segment shares before and after, PSI by feature, a table by feature, and "
    "with --id who moved from which segment to which. Needs matplotlib: the report extra.",
    example="fastseg report model.json customers_q1.parquet --out report.html "
    "--drift customers_q2.parquet --id customer_id",
)
@o.inputs(model=True)
@click.option(
    "--out", required=True, metavar="FILE", help="the HTML file to write, e.g. report.html"
)
@o.k_range(
    "values of k to score for the curves when the model's k was given (default 2:12), "
    "e.g. 2:8; not used for a model fitted with --k auto, which keeps the scores its k was "
    "chosen from",
    required=False,
)
@click.option(
    "--drift",
    "new",
    multiple=True,
    metavar="NEW",
    help="data of a later period to compare with DATA in a drift section (file, glob or "
    "folder; repeat for several), e.g. customers_q2.parquet",
)
@click.option(
    "--id",
    "id_column",
    metavar="COLUMN",
    help="customer id column of both periods (needs --drift): the drift section shows who "
    "moved from which segment to which, e.g. customer_id",
)
@click.option(
    "--compare",
    "compare",
    is_flag=True,
    help="add a section comparing k-means with the other algorithms at the model's k "
    "(fastseg compare: each algorithm is fitted again)",
)
@o.sample("rows the silhouettes are taken on when k is scored (default 10000), e.g. 20000")
@o.seed()
@o.memory
@o.quiet_overwrite
def report(
    model, data, out, k_range, new, id_column, compare, sample, seed, overwrite, say, **memory
):
    from ..cluster.modelfile import load_engine
    from ..io.output import check_output_path, input_files
    from ..workflow.report import DEFAULT_KS, k_range_text, write_report

    new = None if not new else (new[0] if len(new) == 1 else list(new))
    check_output_path(out, overwrite=overwrite, inputs=input_files(model, data, new))
    engine = load_engine(model)
    kept = getattr(engine, "k_selection_", None)
    if kept is not None and k_range is not None:
        say(
            f"--k-range is not used: the model was fitted with --k auto and keeps the "
            f"scores its k was chosen from (k = {k_range_text(kept['k_range'])})"
        )
    selection, _ = write_report(
        engine,
        data,
        out,
        ks=DEFAULT_KS if k_range is None else k_range,
        sample_size=sample,
        random_state=seed,
        overwrite=overwrite,
        new=new,
        id=id_column,
        compare=compare,
        **memory,
    )
    scored = k_range_text([s.k for s in selection.scores])
    how = f"the model's own scores of k = {scored}" if kept is not None else f"k = {scored} scored"
    later = "" if new is None else "; with the drift to the later period"
    say(f"report written to {out} ({how}{later})")
