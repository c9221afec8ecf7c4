"""The ``fastseg`` command: a thin shell over the library. Errors are one line and exit 2.

It runs the engines under the estimators (``fastseg.lloyd``, ``fastseg.minibatch``), so it
never imports scikit-learn: a second and 100 MB less per run. Arguments are checked here.
"""

import argparse
import json
import os
import re
import sys
import tempfile
import time
import warnings

from .. import __version__
from ..cluster.lloyd import LloydEngine
from ..cluster.minibatch import MiniBatchEngine
from ..cluster.modelfile import load_engine
from ..errors import FastsegError
from ..io.dataset import SCALINGS
from ..io.output import check_output_path
from ..progress import progress_bar
from ..workflow.labels import check_labels_request, write_labels
from ..workflow.segments import (
    align_to,
    check_alignment,
    format_segment_table,
    order_by_size,
    segment_table,
)

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code
    try:
        with progress_bar(enabled=not getattr(args, "quiet", False)), warnings.catch_warnings():
            warnings.showwarning = _note  # the library's warnings, as one-line notes
            args.run(args)
    except KeyboardInterrupt:
        print("fastseg: interrupted; no partial output was left behind", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (FastsegError, ValueError, OSError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"fastseg: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    return 0


# ----- commands ---------------------------------------------------------------------------
def cmd_fit(args):
    for path in (args.model, args.labels):
        if path:
            check_output_path(path, overwrite=args.overwrite)
    if args.keep and not args.labels:
        raise FastsegError("--keep chooses the columns of --labels output: add --labels FILE")
    if args.labels:
        check_labels_request(_data_arg(args.data), args.features, args.keep, args.derive)
    previous = load_engine(args.align_to) if args.align_to else None
    if previous is not None and args.k != "auto":
        check_alignment(previous, args.features, args.k, args.categorical)
    if args.k == "auto":
        args.k = _choose_k(args)
        if previous is not None:
            check_alignment(previous, args.features, args.k, args.categorical)
    estimator = _estimator(args)
    start = time.perf_counter()
    estimator.fit(_data_arg(args.data), columns=args.features)
    seconds = time.perf_counter() - start
    order_by_size(estimator)
    if previous is not None:
        moved = align_to(estimator, previous)
        _say(
            args,
            f"segments numbered as in {args.align_to}: their centres moved "
            f"{moved.min():.2f}-{moved.max():.2f} (in standard deviations when scaled)",
        )
    n = estimator.labels_.shape[0]
    _say(
        args,
        f"clustered {n:,} rows into {args.k} segments in {seconds:.1f} s "
        f"(inertia {estimator.inertia_:.6g}, {estimator.n_iter_} iterations)",
    )
    if estimator.n_imputed_:
        _say(
            args,
            f"filled {estimator.n_imputed_:,} missing feature values with the feature "
            f"{args.missing}s",
        )
    if estimator.n_rows_dropped_:
        _say(
            args,
            f"dropped {estimator.n_rows_dropped_:,} rows with missing values in the "
            "features (they get no segment)",
        )
    print(format_segment_table(segment_table(estimator)))
    if args.labels:
        _write_labels(args, estimator, args.labels, fitted=True)
    if args.model:  # last: a model on disk means the whole run succeeded
        estimator.save(args.model, overwrite=args.overwrite)
        _say(args, f"model written to {args.model}")


def _choose_k(args):
    """--k auto: the knee of select-k's inertia curve, else the silhouette's pick (said so)."""
    from ..workflow.select_k import select_k

    selection = select_k(_data_arg(args.data), args.k_range, **_selection_options(args))
    if selection.knee is not None:
        _say(args, f"--k auto: k = {selection.knee}, the knee of the inertia curve")
        return selection.knee
    k = selection.picks["silhouette"]
    _say(args, f"--k auto: the inertia curve has no clear knee; k = {k}, the best silhouette")
    return k


def _selection_options(args):
    """select_k's settings from the options that fit and select-k share."""
    return dict(
        columns=args.features,
        scale=args.scale,
        log1p=args.log1p,
        derive=args.derive,
        pca=args.pca,
        categorical=args.categorical,
        category_weight=args.category_weight,
        missing=args.missing,
        random_state=args.seed,
        max_iter=args.max_iter or 300,
        memory_budget=args.memory_budget,
        spill_dir=args.spill_dir,
        n_threads=args.threads,
    )


def cmd_select_k(args):
    from ..workflow.select_k import select_k

    selection = select_k(
        _data_arg(args.data),
        args.k_range,
        sample_size=args.sample,
        **_selection_options(args),
    )
    if args.json:
        print(json.dumps(selection.to_dict(), indent=1))
    else:
        _say(args, f"scored {len(args.k_range)} values of k on {selection.n_rows:,} rows")
        print(selection.table())


def cmd_profile(args):
    from ..io.output import atomic_output
    from ..workflow.profile import format_profile, profile

    if args.out:
        check_output_path(args.out, overwrite=args.overwrite)
    table = profile(
        load_engine(args.model),
        _data_arg(args.data),
        categories=args.categories,
        sample_size=args.sample,
        random_state=args.seed,
    )
    text = format_profile(table, args.format)
    if not args.out:
        print(text)
        return
    with atomic_output(args.out, overwrite=args.overwrite) as tmp:
        with open(tmp, "w") as f:
            f.write(text if text.endswith("\n") else text + "\n")
    _say(args, f"profile of {table.height} segments written to {args.out}")


def cmd_report(args):
    from ..workflow.report import write_report

    check_output_path(args.out, overwrite=args.overwrite)
    selection, _ = write_report(
        load_engine(args.model),
        _data_arg(args.data),
        args.out,
        ks=args.k_range,
        sample_size=args.sample,
        random_state=args.seed,
        overwrite=args.overwrite,
        memory_budget=args.memory_budget,
        spill_dir=args.spill_dir,
    )
    _say(args, f"report written to {args.out} (k = {', '.join(map(str, args.k_range))} scored)")


def cmd_predict(args):
    check_output_path(args.out, overwrite=args.overwrite)
    _write_labels(args, load_engine(args.model), args.out)


def cmd_generate(args):
    from ..datasets.customers import write_customers
    from ..progress import report

    rows = write_customers(
        args.out,
        args.rows,
        seed=args.seed,
        overwrite=args.overwrite,
        on_progress=lambda done, total: report("generate", done, total),
    )
    _say(args, f"{rows:,} customers written to {args.out}")


def cmd_demo(args):
    """Generate customers, segment them, show the segments and how well they match the truth."""
    import polars as pl
    from sklearn.metrics import adjusted_rand_score

    from ..datasets.customers import FEATURES, write_customers

    with tempfile.TemporaryDirectory(prefix="fastseg-demo-") as folder:
        path = os.path.join(folder, "customers.parquet")
        write_customers(path, args.rows, seed=args.seed)
        print(
            f"generated {args.rows:,} synthetic customers "
            f"({', '.join(FEATURES)}; a few nulls; hidden true segments)"
        )
        model = LloydEngine(
            n_clusters=args.k, scale="standard", missing="drop", random_state=args.seed, n_init=3
        )
        start = time.perf_counter()
        model.fit(path, columns=list(FEATURES))
        seconds = time.perf_counter() - start
        order_by_size(model)
        print(
            f"segmented them into {args.k} segments in {seconds:.2f} s "
            f"({model.n_rows_dropped_:,} rows with missing values left out)\n"
        )
        print(format_segment_table(segment_table(model)))
        truth = (
            pl.scan_parquet(path)
            .drop_nulls(list(FEATURES))
            .select("true_segment")
            .collect()["true_segment"]
            .to_numpy()
        )
        ari = adjusted_rand_score(truth, model.labels_)
        print(f"\nagreement with the hidden true segments (adjusted Rand index): {ari:.3f}")
    print(
        "\nnext: fastseg generate --rows 1000000 --out customers.parquet\n"
        "      fastseg fit customers.parquet --k 6 --features "
        + ",".join(FEATURES)
        + " --model model.json --labels labeled.parquet"
    )


# ----- helpers ----------------------------------------------------------------------------
def _note(message, category, filename, lineno, file=None, line=None):
    print(f"fastseg: note: {message}", file=sys.stderr)


def _estimator(args):
    common = dict(
        n_clusters=args.k,
        random_state=args.seed,
        scale=args.scale,
        log1p=args.log1p,
        derive=args.derive,
        pca=args.pca,
        categorical=args.categorical,
        category_weight=args.category_weight,
        missing=args.missing,
        memory_budget=args.memory_budget,
        spill_dir=args.spill_dir,
        n_threads=args.threads,
        n_init=args.n_init,
    )
    if args.algorithm == "minibatch":
        return MiniBatchEngine(**common, max_iter=args.max_iter or 100)
    return LloydEngine(**common, max_iter=args.max_iter or 300)


def _write_labels(args, model, out, fitted=False):
    written, unlabelled = write_labels(
        model,
        _data_arg(args.data),
        out,
        keep=args.keep,
        overwrite=args.overwrite,
        fitted=fitted,
    )
    note = f" ({unlabelled:,} without a segment: missing features)" if unlabelled else ""
    _say(args, f"labels for {written:,} rows written to {out}{note}")


def _data_arg(paths):
    return paths[0] if len(paths) == 1 else paths


def _say(args, text):
    if not args.quiet:
        print(text, file=sys.stderr)


def writable_folder(text):
    if not os.path.isdir(text) or not os.access(text, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"'{text}' is not a folder this user can write to")
    return text


def parse_size(text):
    """Bytes from '512MB', '2GB', '1.5G', '100000' (binary units: 1 MB = 2**20 bytes)."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([kmgt]?)i?b?\s*", text, flags=re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size; write e.g. 512MB or 2GB")
    number, unit = float(match.group(1)), match.group(2).lower()
    value = int(number * 1024 ** " kmgt".index(unit or " "))
    if value <= 0:
        raise argparse.ArgumentTypeError("the memory budget must be positive")
    return value


def _whole_number(text, low, high=None):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
    return value


def positive_int(text):
    return _whole_number(text, 1)


def seed(text):
    return _whole_number(text, 0, 2**32 - 1)


def pca_setting(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if 0 < value < 1:
        return value
    if value >= 1 and value == int(value):
        return int(value)
    raise argparse.ArgumentTypeError(
        f"'{text}': give a number of components (1, 2, ...) or a share of variance in (0, 1)"
    )


def k_value(text):
    return text if text == "auto" else _whole_number(text, 1)


def k_range(text):
    """Values of k from '2:12' (both ends included) or '3,5,8'."""
    try:
        if ":" in text:
            low, high = (int(v) for v in text.split(":"))
            values = list(range(low, high + 1))
        else:
            values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a k range; write e.g. 2:12 or 3,5,8"
        ) from None
    if not values or values[0] < 2 or values[-1] > 1000:
        raise argparse.ArgumentTypeError(f"'{text}': give values of k from 2 to 1000")
    return values


def column_list(text):
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one column name, comma-separated")
    return names


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line, exit 2, like every other fastseg error."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"fastseg: error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = _Parser(prog="fastseg", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"fastseg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add_common(p):
        p.add_argument("--quiet", action="store_true", help="no progress bar or notes on stderr")
        p.add_argument(
            "--overwrite", action="store_true", help="replace output files that already exist"
        )

    def add_categorical(p):
        p.add_argument(
            "--categorical",
            type=column_list,
            default=None,
            help="columns to one-hot encode besides --features (levels learned in the fit; "
            "one never seen later is counted, never a crash), e.g. region,gender",
        )
        p.add_argument(
            "--category-weight",
            type=float,
            default=None,
            help="value of a one-hot column where the row has the level (default 0.707: a "
            "different category counts like one standard deviation), e.g. 0.5",
        )

    def add_inputs(p, model=False):
        """The positional arguments: a model file (predict, profile, report), then the data."""
        if model:
            p.add_argument(
                "model", help="model file written by 'fastseg fit --model', e.g. model.json"
            )
        p.add_argument(
            "data", nargs="+", help="Parquet file(s), glob(s) or folder(s), e.g. 'data/*.parquet'"
        )

    def add_memory(p):
        """Where the decoded rows may live: fit, select-k and report share these."""
        p.add_argument(
            "--memory-budget",
            type=parse_size,
            default=None,
            help="RAM for decoded data, e.g. 512MB; above it rows spill to local disk "
            "(default: half of RAM)",
        )
        p.add_argument(
            "--spill-dir",
            type=writable_folder,
            default=None,
            help="folder for the spill file, e.g. /mnt/scratch (default: the system temp folder)",
        )

    def add_preprocessing(p):
        """The feature options fit and select-k share."""
        p.add_argument(
            "--features",
            type=column_list,
            required=True,
            help="comma-separated numeric feature columns, e.g. age,income",
        )
        p.add_argument(
            "--scale",
            choices=SCALINGS,
            default="standard",
            help="map features to (x - centre) / spread: standard (mean, std; the default), "
            "minmax (min, range), robust (median, interquartile range) or none; e.g. robust",
        )
        p.add_argument(
            "--missing",
            choices=["drop", "mean", "median", "error"],
            default="drop",
            help="rows with a missing feature: drop them (the default; counted), fill the gaps "
            "with the feature's mean or median, or stop with an error; e.g. --missing median",
        )
        p.add_argument(
            "--derive",
            action="append",
            default=None,
            metavar="'NAME = EXPRESSION'",
            help="a feature computed from other columns (SQL syntax; repeat for more), e.g. "
            "--derive 'total_spend = mnt_wines + mnt_meat'; name it in --features to use it",
        )
        add_categorical(p)
        p.add_argument(
            "--pca",
            type=pca_setting,
            default=None,
            help="cluster on principal components of the scaled features: a number of them, or "
            "the share of variance to keep, e.g. --pca 3 or --pca 0.9",
        )
        p.add_argument(
            "--log1p",
            type=column_list,
            default=None,
            help="features to take log(1 + x) of before scaling, e.g. income,avg_order_value",
        )

    fit = sub.add_parser(
        "fit",
        help="segment customers in Parquet files",
        description="Cluster the rows of Parquet file(s) and print the segments, largest first.",
        epilog="example: fastseg fit customers.parquet --k 6 --features age,income,tenure_months "
        "--model model.json --labels labeled.parquet",
    )
    add_inputs(fit)
    fit.add_argument(
        "--k",
        type=k_value,
        required=True,
        help="number of segments, e.g. 6; or 'auto': run select-k over --k-range and take "
        "the knee of its inertia curve",
    )
    fit.add_argument(
        "--k-range",
        type=k_range,
        default=list(range(2, 13)),
        help="values of k that --k auto tries (default 2:12), e.g. 3:8",
    )
    fit.add_argument(
        "--align-to",
        help="a previous model file of the same features: its segment numbers are kept "
        "(segments paired by centre distance), e.g. --align-to last_quarter.json",
    )
    add_preprocessing(fit)
    fit.add_argument(
        "--algorithm",
        choices=["lloyd", "minibatch"],
        default="lloyd",
        help="exact Lloyd k-means (default) or mini-batch k-means",
    )
    fit.add_argument("--seed", type=seed, default=0, help="random seed (default 0), e.g. 7")
    fit.add_argument(
        "--n-init",
        type=positive_int,
        default=1,
        help="initialisations tried, the best kept (default 1), e.g. 5",
    )
    fit.add_argument(
        "--max-iter",
        type=positive_int,
        default=None,
        help="Lloyd iterations (default 300) or mini-batch passes over the data (default 100), "
        "e.g. 50",
    )
    add_memory(fit)
    fit.add_argument(
        "--threads", type=positive_int, default=None, help="threads (default: all), e.g. 2"
    )
    fit.add_argument("--model", help="write the model (JSON) here, e.g. model.json")
    fit.add_argument(
        "--labels", help="write the input rows plus a 'segment' column here, e.g. labeled.parquet"
    )
    fit.add_argument(
        "--keep",
        type=column_list,
        default=None,
        help="with --labels: only these input columns, e.g. customer_id",
    )
    add_common(fit)
    fit.set_defaults(run=cmd_fit)

    select = sub.add_parser(
        "select-k",
        help="fit and score a range of k, and recommend one",
        description="Fit k-means for each k (data decoded once) and score it: inertia, "
        "silhouette (stratified sample), Davies-Bouldin, Calinski-Harabasz; the knee of the "
        "inertia curve is the recommendation.",
        epilog="example: fastseg select-k customers.parquet --k-range 2:12 "
        "--features age,income,tenure_months --sample 20000",
    )
    add_inputs(select)
    select.add_argument(
        "--k-range", type=k_range, required=True, help="values of k, e.g. 2:12 or 3,5,8"
    )
    add_preprocessing(select)
    select.add_argument(
        "--sample",
        type=positive_int,
        default=10_000,
        help="rows the silhouette is taken on, stratified by segment (default 10000), e.g. 20000",
    )
    select.add_argument("--seed", type=seed, default=0, help="random seed (default 0), e.g. 7")
    select.add_argument(
        "--max-iter", type=positive_int, default=300, help="Lloyd iterations (default 300), e.g. 50"
    )
    add_memory(select)
    select.add_argument(
        "--threads", type=positive_int, default=None, help="threads (default: all), e.g. 2"
    )
    select.add_argument("--json", action="store_true", help="print the scores as JSON, e.g. for jq")
    select.add_argument("--quiet", action="store_true", help="no progress bar or notes on stderr")
    select.set_defaults(run=cmd_select_k)

    prof = sub.add_parser(
        "profile",
        help="describe each segment of a model in business units",
        description="Per segment: size and share; mean, median, min and max of every feature "
        "in original units; z-scores against the whole population; category shares; the "
        "features that set it apart and a short label made from them.",
        epilog="example: fastseg profile model.json customers.parquet --format markdown "
        "--out profile.md",
    )
    add_inputs(prof, model=True)
    prof.add_argument(
        "--format",
        choices=["table", "csv", "json", "markdown"],
        default="table",
        help="output format (default table), e.g. --format csv",
    )
    prof.add_argument(
        "--out", help="write the profile here instead of printing it, e.g. profile.md"
    )
    prof.add_argument(
        "--categories",
        type=column_list,
        default=None,
        help="categorical columns to break down, e.g. region,gender "
        "(default: every text, categorical or boolean column with at most 50 values)",
    )
    prof.add_argument(
        "--sample",
        type=positive_int,
        default=20_000,
        help="rows kept per segment for the medians (default 20000; exact below it)",
    )
    prof.add_argument(
        "--seed", type=seed, default=0, help="random seed of the sample (default 0), e.g. 7"
    )
    add_common(prof)
    prof.set_defaults(run=cmd_profile)

    rep = sub.add_parser(
        "report",
        help="write a one-file HTML report with plots",
        description="One self-contained HTML file: the elbow curve and its knee, metrics by k, "
        "segment sizes, a centroid z-score heat map, a 2-D PCA scatter of a sample, feature "
        "distributions by segment and the profile table (needs matplotlib: the report extra).",
        epilog="example: fastseg report model.json customers.parquet --out report.html",
    )
    add_inputs(rep, model=True)
    rep.add_argument("--out", required=True, help="the HTML file to write, e.g. report.html")
    rep.add_argument(
        "--k-range",
        type=k_range,
        default=list(range(2, 13)),
        help="values of k for the elbow curve (default 2:12), e.g. 2:8",
    )
    rep.add_argument(
        "--sample",
        type=positive_int,
        default=10_000,
        help="rows the silhouettes are taken on (default 10000), e.g. 20000",
    )
    rep.add_argument("--seed", type=seed, default=0, help="random seed (default 0), e.g. 7")
    add_memory(rep)
    add_common(rep)
    rep.set_defaults(run=cmd_report)

    predict = sub.add_parser(
        "predict",
        help="assign segments to new rows with a saved model",
        description="Stream Parquet rows of any size through a saved model; writes Parquet.",
        epilog="example: fastseg predict model.json new_customers.parquet --out labeled.parquet",
    )
    add_inputs(predict, model=True)
    predict.add_argument("--out", required=True, help="output Parquet file, e.g. labeled.parquet")
    predict.add_argument(
        "--keep",
        type=column_list,
        default=None,
        help="only these input columns beside 'segment', e.g. customer_id",
    )
    add_common(predict)
    predict.set_defaults(run=cmd_predict)

    gen = sub.add_parser(
        "generate",
        help="write a synthetic customer table",
        description="Realistic synthetic customers with hidden true segments, in row groups.",
        epilog="example: fastseg generate --rows 10000000 --out customers.parquet --seed 1",
    )
    gen.add_argument(
        "--rows", type=positive_int, required=True, help="number of customers, e.g. 1000000"
    )
    gen.add_argument("--out", required=True, help="output Parquet file, e.g. labeled.parquet")
    gen.add_argument("--seed", type=seed, default=0, help="random seed (default 0), e.g. 7")
    add_common(gen)
    gen.set_defaults(run=cmd_generate)

    demo = sub.add_parser(
        "demo",
        help="generate customers, segment them, print the segments",
        description="The main job on a built-in default: 200,000 synthetic customers, k=6.",
        epilog="example: fastseg demo --rows 1000000",
    )
    demo.add_argument(
        "--rows",
        type=positive_int,
        default=200_000,
        help="customers to generate (default 200,000), e.g. 1000000",
    )
    demo.add_argument("--k", type=positive_int, default=6, help="segments (default 6), e.g. 8")
    demo.add_argument("--seed", type=seed, default=0, help="random seed (default 0), e.g. 7")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(run=cmd_demo)
    return parser


if __name__ == "__main__":
    sys.exit(main())
