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
    "--out",
    required=True,
    metavar="FILE",
    help="output Parquet file, e.g. labeled.parquet (with --workers/--scheduler: a folder of "
    "one file per fragment)",
)
@click.option(
    "--keep",
    type=o.COLUMNS,
    metavar="COLUMNS",
    help="only these input columns beside 'segment', e.g. customer_id",
)
@o.cluster
@o.quiet_overwrite
def predict(model, data, out, keep, overwrite, say, workers, scheduler, persist):
    from ..cluster.modelfile import load_engine
    from ..distributed.cluster import connected
    from ..io.output import check_output_path, input_files
    from ..workflow.labels import write_labels

    if workers is not None or scheduler is not None:
        from ..distributed.predict import check_folder, write_label_parts

        check_folder(out, overwrite)
        engine = load_engine(model, any_model=True)
        with connected(workers, scheduler, persist, say) as cluster:
            written, unlabelled = write_label_parts(
                engine, data, out, client=cluster["client"], keep=keep, overwrite=overwrite
            )
        say(labels_written(written, unlabelled, out))
        return
    check_output_path(out, overwrite=overwrite, inputs=input_files(model, data))
    written, unlabelled = write_labels(
        load_engine(model, any_model=True), data, out, keep=keep, overwrite=overwrite
    )
    say(labels_written(written, unlabelled, out))
