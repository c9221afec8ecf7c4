"""``fastseg predict``: assign segments to new rows with a saved model."""

import click

from . import options as o
from .fit import labels_written


@o.command(
    "predict",
    short_help="assign segments to new rows with a saved model",
    help="Stream rows of any size (Parquet, CSV, NDJSON) through a saved model; writes Parquet.",
    example="fastseg predict model.json new_customers.parquet --out labeled.parquet",
)
@o.inputs(model=True)
@click.option(
    "--out", required=True, metavar="FILE", help="output Parquet file, e.g. labeled.parquet"
)
@click.option(
    "--keep",
    type=o.COLUMNS,
    metavar="COLUMNS",
    help="only these input columns beside 'segment', e.g. customer_id",
)
@o.quiet_overwrite
def predict(model, data, out, keep, overwrite, say):
    from ..cluster.modelfile import load_engine
    from ..io.output import check_output_path, input_files
    from ..workflow.labels import write_labels

    check_output_path(out, overwrite=overwrite, inputs=input_files(model, data))
    written, unlabelled = write_labels(
        load_engine(model), data, out, keep=keep, overwrite=overwrite
    )
    say(labels_written(written, unlabelled, out))
