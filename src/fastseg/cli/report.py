"""``fastseg report``: a one-file HTML report with plots."""

import click

from . import options as o


@o.command(
    "report",
    short_help="write a one-file HTML report with plots",
    help="One self-contained HTML file: the elbow curve and its knee, metrics by k, segment "
    "sizes, a centroid z-score heat map, a 2-D PCA scatter of a sample, feature distributions "
    "by segment and the profile table (needs matplotlib: the report extra).",
    example="fastseg report model.json customers.parquet --out report.html",
)
@o.inputs(model=True)
@click.option(
    "--out", required=True, metavar="FILE", help="the HTML file to write, e.g. report.html"
)
@o.k_range("values of k for the elbow curve (default 2:12), e.g. 2:8", default="2:12")
@o.sample("rows the silhouettes are taken on (default 10000), e.g. 20000")
@o.seed()
@o.memory
@o.quiet_overwrite
def report(model, data, out, k_range, sample, seed, overwrite, say, **memory):
    from ..cluster.modelfile import load_engine
    from ..io.output import check_output_path, input_files
    from ..workflow.report import write_report

    check_output_path(out, overwrite=overwrite, inputs=input_files(model, data))
    write_report(
        load_engine(model),
        data,
        out,
        ks=k_range,
        sample_size=sample,
        random_state=seed,
        overwrite=overwrite,
        **memory,
    )
    say(f"report written to {out} (k = {', '.join(map(str, k_range))} scored)")
