"""``fastseg drift``: has new data drifted from a model's reference, and must it be retrained?"""

import click

from . import options as o

EXIT_DRIFT = 3  # --fail-on: the verdict reached the level given


def parse_threshold(text):
    """'psi=0.15,0.3' → ("psi", 0.15, 0.3); 'js=0.2' keeps the retrain level; 'never' as
    the retrain level: the measure alone never asks for a retrain."""
    name, _, levels = text.partition("=")
    parts = levels.split(",")
    try:
        watch = float(parts[0])
        retrain = ... if len(parts) == 1 else (None if parts[1] == "never" else float(parts[1]))
    except ValueError:
        retrain = watch = None
    if not name or watch is None or len(parts) > 2:
        raise ValueError(
            f"'{text}': write RULE=WATCH or RULE=WATCH,RETRAIN, e.g. psi=0.15,0.3 or js=0.2,never"
        )
    return name.strip(), watch, retrain


@o.command(
    "drift",
    short_help="measure drift of new data from a model's reference, with a verdict",
    help="Compare NEW data with the reference profile the model keeps of its training data "
    "(or with --reference data): per feature PSI on the reference's decile bins, Wasserstein "
    "distance / std or Jensen-Shannon distance, KS / chi-square p-values beside n; per segment "
    "the share before and after, how far its centre would move if refitted, the share of "
    "customers out of distribution; with --id, who moved from which segment to which. A "
    "verdict, stable / watch / retrain, by rules you can set with --threshold.",
    example="fastseg drift model.json customers_q2.parquet --reference customers_q1.parquet "
    "--id customer_id",
)
@o.inputs(model=True)
@click.option(
    "--reference",
    multiple=True,
    metavar="OLD",
    help="data of the earlier period to compare with (file, glob or folder; repeat for several) "
    "instead of the model's own profile, e.g. customers_q1.parquet",
)
@click.option(
    "--id",
    "id_column",
    metavar="COLUMN",
    help="customer id column of both periods (needs --reference): the migration between "
    "segments, e.g. customer_id",
)
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.option(
    "--out",
    metavar="FILE",
    help="write the result (the table, or JSON with --json) here instead of printing it",
)
@click.option(
    "--threshold",
    multiple=True,
    type=o.Parsed(parse_threshold),
    metavar="RULE=WATCH[,RETRAIN]",
    help="change a verdict rule (psi, wasserstein, js, share_psi, ood_share, centre_shift), "
    "e.g. psi=0.15,0.3 or js=0.2,never; repeat for several",
)
@click.option(
    "--fail-on",
    type=click.Choice(["watch", "retrain"]),
    help=f"exit with status {EXIT_DRIFT} when the verdict is this or worse (scheduled jobs)",
)
@o.seed("random seed of the sample the quantiles are taken from (default 0), e.g. 7")
@o.spill_dir(
    "folder for the temporary files of --id, e.g. /mnt/scratch (default: the system temp folder)"
)
@o.quiet_overwrite
def drift(
    model,
    data,
    reference,
    id_column,
    as_json,
    out,
    threshold,
    fail_on,
    seed,
    spill_dir,
    overwrite,
    say,
):
    import json

    from ..io.output import atomic_output, check_output_path, input_files
    from ..workflow.drift import DriftRules
    from ..workflow.drift import drift as measure

    old = None if not reference else (reference[0] if len(reference) == 1 else list(reference))
    if out:
        check_output_path(out, overwrite=overwrite, inputs=input_files(model, data, old))
    result = measure(
        model, data, old, id_column, rules=_rules(threshold), seed=seed, spill_dir=spill_dir
    )
    text = json.dumps(result.to_dict(), indent=1) if as_json else result.to_text()
    if out:
        with atomic_output(out, overwrite=overwrite) as tmp, open(tmp, "w") as f:
            f.write(text + "\n")
        say(f"drift written to {out}: {result.verdict}")
    else:
        print(text)
    if fail_on and DriftRules.at_least(result.verdict, fail_on):
        raise click.exceptions.Exit(EXIT_DRIFT)


def _rules(thresholds):
    """{rule: (watch, retrain)} from --threshold values, over the default rules."""
    from ..workflow.drift import DriftRules

    rules = DriftRules().as_dict()
    for name, watch, retrain in thresholds:
        if name not in rules:
            return {name: None}  # DriftRules.of says which rules there are
        rules[name] = [watch, rules[name][1] if retrain is ... else retrain]
    return rules
