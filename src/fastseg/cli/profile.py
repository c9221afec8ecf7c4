"""``fastseg profile``: describe each segment of a model in business units."""

import click

from . import options as o


@o.command(
    "profile",
    short_help="describe each segment of a model in business units",
    help="Per segment: size and share; mean, median, min and max of every feature in original "
    "units; z-scores against the whole population; category shares; the features that set it "
    "apart and a short label made from them.",
    example="fastseg profile model.json customers.parquet --format markdown --out profile.md",
)
@o.inputs(model=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "markdown"]),  # profile.FORMATS (no import here)
    default="table",
    help="output format (default table), e.g. --format csv",
)
@click.option(
    "--out", metavar="FILE", help="write the profile here instead of printing it, e.g. profile.md"
)
@click.option(
    "--categories",
    type=o.COLUMNS,
    metavar="COLUMNS",
    help="categorical columns to break down, e.g. region,gender "
    "(default: every text, categorical or boolean column with at most 50 values)",
)
@click.option(
    "--rules",
    is_flag=True,
    help="add each segment as a rule a marketer can read (fastseg explain: one more pass)",
)
@o.sample("rows kept per segment for the medians (default 20000; exact below it)", default=20_000)
@o.seed("random seed of the sample (default 0), e.g. 7")
@o.quiet_overwrite
def profile(model, data, fmt, out, categories, rules, sample, seed, overwrite, say):
    from ..cluster.modelfile import load_engine
    from ..io.output import atomic_output, check_output_path, input_files
    from ..workflow import profile as profiling

    if out:
        check_output_path(out, overwrite=overwrite, inputs=input_files(model, data))
    if rules and fmt == "csv":
        raise click.UsageError(
            "--rules does not fit a CSV table: use --format table, markdown or json"
        )
    engine = load_engine(model, any_model=True)
    table = profiling.profile(
        engine, data, categories=categories, sample_size=sample, random_state=seed
    )
    text = profiling.format_profile(table, fmt)
    if rules:
        text = _with_rules(text, fmt, engine, data, seed)
    if not out:
        print(text)
        return
    with atomic_output(out, overwrite=overwrite) as tmp, open(tmp, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    say(f"profile of {table.height} segments written to {out}")


def _with_rules(text, fmt, engine, data, seed):
    """The profile followed by the segments as rules (``fastseg explain``); in JSON, both
    under one object."""
    import json

    from ..workflow.explain import explain

    found = explain(engine, data, seed=seed)
    if fmt == "json":
        return json.dumps({"profile": json.loads(text), "rules": found.to_dict()}, indent=1)
    return f"{text.rstrip()}\n\nThe segments as rules:\n{found.to_text()}"
