"""``fastseg explain``: the segments of a model as rules a marketer can read."""

import click

from . import options as o


@o.command(
    "explain",
    short_help="the segments of a model as readable rules (a threshold tree)",
    help="A shallow threshold tree, one leaf per segment (IMM, with categorical splits), grown "
    "on a sample of the data labelled by the model: rules such as 'income > 80,000 and "
    "tenure_months > 40 → segment 3', the share of customers each sends there, and how often "
    "the rules agree with the model.",
    example="fastseg explain model.json customers.parquet --json --out rules.json",
)
@o.inputs(model=True)
@o.sample("rows of the sample the tree is grown on (default 100000)", default=100_000)
@o.seed("random seed of the sample (default 0), e.g. 7")
@click.option("--json", "as_json", is_flag=True, help="the rules and the tree as JSON")
@click.option(
    "--out", metavar="FILE", help="write the rules here instead of printing them, e.g. rules.txt"
)
@o.quiet_overwrite
def explain(model, data, sample, seed, as_json, out, overwrite, say):
    from ..cluster.modelfile import load_engine
    from ..io.output import atomic_output, check_output_path, input_files
    from ..workflow.explain import explain as explaining

    if out:
        check_output_path(out, overwrite=overwrite, inputs=input_files(model, data))
    found = explaining(load_engine(model, any_model=True), data, sample_size=sample, seed=seed)
    text = found.to_json() if as_json else found.to_text()
    if not out:
        print(text)
        return
    with atomic_output(out, overwrite=overwrite) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    say(
        f"{len(found.rules())} rules written to {out} (agree with the model for "
        f"{found.agreement:.0%} of customers)"
    )
