"""``fastseg generate``: a synthetic customer table."""

import click

from ..progress import report
from . import options as o


@o.command(
    "generate",
    short_help="write a synthetic customer table",
    help="Realistic synthetic customers with hidden true segments, in row groups.",
    example="fastseg generate --rows 10000000 --out customers.parquet --seed 1",
)
@click.option(
    "--rows", type=o.POSITIVE, required=True, metavar="N", help="number of customers, e.g. 1000000"
)
@click.option(
    "--out", required=True, metavar="FILE", help="output Parquet file, e.g. customers.parquet"
)
@o.seed()
@o.quiet_overwrite
def generate(rows, out, seed, overwrite, say):
    from ..datasets.customers import write_customers

    written = write_customers(
        out,
        rows,
        seed=seed,
        overwrite=overwrite,
        on_progress=lambda done, total: report("generate", done, total),
    )
    say(f"{written:,} customers written to {out}")
