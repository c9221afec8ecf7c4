"""The options several commands share, each declared once as a decorator, and the parsers of
their values (plain functions raising ValueError with the message a user sees)."""

import functools
import os
import re
import sys
import warnings
from dataclasses import fields

import click

from ..preprocess.settings import CLI_DEFAULTS, PreprocessSettings
from ..progress import progress_bar


# ----- value parsers ----------------------------------------------------------------------
def parse_size(text):
    """Bytes from '512MB', '2GB', '1.5G', '100000' (binary units: 1 MB = 2**20 bytes)."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([kmgt]?)i?b?\s*", text, flags=re.IGNORECASE)
    try:
        number = float(match.group(1)) if match else None
    except ValueError:  # '1.2.3'
        number = None
    if number is None:
        raise ValueError(f"'{text}' is not a size; write e.g. 512MB or 2GB")
    value = int(number * 1024 ** " kmgt".index(match.group(2).lower() or " "))
    if value <= 0:
        raise ValueError("the memory budget must be positive")
    return value


def whole_number(text, low, high=None):
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a whole number") from None
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"must be {bound}, got {value}")
    return value


def positive_int(text):
    return whole_number(text, 1)


def port_number(text):
    return whole_number(text, 1, 65535)


def parse_seed(text):
    return whole_number(text, 0, 2**32 - 1)


def parse_k(text):
    """A number of segments, or 'auto'."""
    return text if text == "auto" else whole_number(text, 1)


def parse_k_range(text):
    """Values of k from '2:12' (both ends included) or '3,5,8'."""
    try:
        if ":" in text:
            low, high = (int(v) for v in text.split(":"))
            values = list(range(low, high + 1))
        else:
            values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise ValueError(f"'{text}' is not a k range; write e.g. 2:12 or 3,5,8") from None
    if not values or values[0] < 2 or values[-1] > 1000:
        raise ValueError(f"'{text}': give values of k from 2 to 1000")
    return values


_NAME = re.compile(r'\s*(?:"((?:[^"]|"")*)"|([^,"]*?))\s*(,|$)')


def parse_columns(text):
    """Column names from 'age,income'; a name holding a comma, a quote or spaces at its ends
    is written in double quotes, as in CSV: 'age,"tenure, months"," Age"'."""
    names, at = [], 0
    while at < len(text):
        item = _NAME.match(text, at)
        if item is None:
            raise ValueError(
                f"cannot read the column names '{text}': write them comma-separated, a name "
                'holding a comma or a quote in double quotes, e.g. age,"tenure, months"'
            )
        quoted, plain, comma = item.groups()
        if quoted is not None or plain:
            names.append(quoted.replace('""', '"') if quoted is not None else plain)
        at = item.end()
        if not comma:
            break
    if not names:
        raise ValueError("give at least one column name, comma-separated")
    return names


def parse_pca(text):
    """A number of components, written as a whole number (3), or a share of the variance to
    keep, written with a point (0.9; 1.0 is all of it)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a number") from None
    share = any(c in text for c in ".eE")
    if share and 0 < value <= 1:
        return value
    if not share and value >= 1 and value == int(value):
        return int(value)
    raise ValueError(
        f"'{text}': give a number of components (1, 2, ...) or a share of the variance "
        "written with a point, from 0 to 1.0 (e.g. 0.9)"
    )


def positive_number(text):
    """A finite number above 0, e.g. 0.5."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a number") from None
    if not 0 < value < float("inf"):
        raise ValueError(f"must be a number above 0, got {text}")
    return value


def writable_folder(text):
    if not os.path.isdir(text) or not os.access(text, os.W_OK | os.X_OK):
        raise ValueError(f"'{text}' is not a folder this user can write to")
    return text


class Parsed(click.ParamType):
    """A click type over one of the parsers above: its ValueError is a one-line usage error."""

    def __init__(self, parse):
        self.parse = parse
        self.name = parse.__name__

    def convert(self, value, param, ctx):
        if not isinstance(value, str):  # already parsed
            return value
        try:
            return self.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


SIZE, SEED, K = Parsed(parse_size), Parsed(parse_seed), Parsed(parse_k)
K_RANGE, COLUMNS, PCA = Parsed(parse_k_range), Parsed(parse_columns), Parsed(parse_pca)
POSITIVE, FOLDER = Parsed(positive_int), Parsed(writable_folder)
POSITIVE_NUMBER = Parsed(positive_number)
PORT = Parsed(port_number)


# ----- help layout ------------------------------------------------------------------------
class Argument(click.Argument):
    """A positional argument with a help text, listed under "Arguments" in --help."""

    def __init__(self, *args, help=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.help = help

    def get_help_record(self, ctx):
        return (self.name, self.help) if self.help else None


class Command(click.Command):
    """A command whose --help lists its arguments, then its options."""

    def format_options(self, ctx, formatter):
        for title, kind in (("Arguments", click.Argument), ("Options", click.Option)):
            params = [p for p in self.get_params(ctx) if isinstance(p, kind)]
            records = [r for r in (p.get_help_record(ctx) for p in params) if r]
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


def command(name, *, short_help, help, example):
    """A fastseg command: its one-line summary, its description and an example of its use."""
    return click.command(
        name, cls=Command, short_help=short_help, help=help, epilog=f"\b\nexample: {example}"
    )


def compose(*decorators):
    """One decorator applying ``decorators``; their options are listed in this order."""

    def apply(function):
        for decorate in reversed(decorators):
            function = decorate(function)
        return function

    return apply


# ----- shared options ---------------------------------------------------------------------
def inputs(model=False):
    """The positional arguments: a model file (predict, profile, report), then the data."""
    data = click.argument(
        "data",
        cls=Argument,
        nargs=-1,
        required=True,
        callback=lambda ctx, param, paths: paths[0] if len(paths) == 1 else list(paths),
        help="Parquet, CSV (.csv, .tsv) or NDJSON (.ndjson, .jsonl) file(s), glob(s) or "
        "folder(s), e.g. 'data/*.parquet'",
    )
    if not model:
        return data
    return compose(
        click.argument(
            "model",
            cls=Argument,
            help="model file written by 'fastseg fit --model', e.g. model.json",
        ),
        data,
    )


features = click.option(
    "--features",
    type=COLUMNS,
    required=True,
    metavar="FEATURES",
    help="comma-separated numeric feature columns, e.g. age,income; a name holding a comma "
    'or spaces at its ends in double quotes, e.g. age,"tenure, months"',
)


# the parser of a settings field without choices: by its name, else by its type
_SETTING_TYPES = {"pca": PCA, "category_weight": POSITIVE_NUMBER, list | None: COLUMNS}


def _preprocess_option(f):
    """The option of one ``PreprocessSettings`` field, its help and choices from the field."""
    default = getattr(CLI_DEFAULTS, f.name)
    help = f.metadata["help"] + ("" if default is None else f" (default {default})")
    name = "--" + f.name.replace("_", "-")
    if f.name == "derive":
        return click.option(name, multiple=True, metavar="'NAME = EXPRESSION'", help=help)
    if "choices" in f.metadata:
        kind = click.Choice(f.metadata["choices"])
    else:
        kind = _SETTING_TYPES.get(f.name) or _SETTING_TYPES[f.type]
    metavar = None if "choices" in f.metadata else f.name.upper()
    return click.option(name, type=kind, default=default, metavar=metavar, help=help)


def preprocessing(command):
    """The ``PreprocessSettings`` fields as options (the CLI's defaults); the command gets them
    as one ``settings`` argument."""
    names = PreprocessSettings.names()

    @functools.wraps(command)
    def run(*args, **kwargs):
        given = {name: kwargs.pop(name) for name in names}
        given["derive"] = list(given["derive"]) or None
        return command(*args, settings=PreprocessSettings(**given), **kwargs)

    return compose(*(_preprocess_option(f) for f in fields(PreprocessSettings)))(run)


def spill_dir(
    help="folder for the spill file, e.g. /mnt/scratch (default: the system temp folder)",
):
    return click.option("--spill-dir", type=FOLDER, metavar="FOLDER", help=help)


memory = compose(
    click.option(
        "--memory-budget",
        type=SIZE,
        metavar="SIZE",
        help="RAM for decoded data, e.g. 512MB; above it rows spill to local disk "
        "(default: half of RAM)",
    ),
    spill_dir(),
)


def quiet(help="no progress bar or notes on stderr"):
    """--quiet. The command runs under the progress bar unless quiet, and gets ``say``: a
    function printing a note on stderr unless quiet."""

    def decorate(command):
        @functools.wraps(command)
        def run(*args, quiet, **kwargs):
            with progress_bar(enabled=not quiet), warnings.catch_warnings():
                if quiet:  # the library's notes too
                    warnings.simplefilter("ignore")
                return command(*args, say=_silent if quiet else _to_stderr, **kwargs)

        return click.option("--quiet", is_flag=True, help=help)(run)

    return decorate


def _to_stderr(text):
    print(text, file=sys.stderr)


def _silent(text):
    pass


overwrite = click.option(
    "--overwrite", is_flag=True, help="replace output files that already exist"
)
quiet_overwrite = compose(quiet(), overwrite)


def sample(help, default=10_000):
    """--sample: rows of the sample a command draws (silhouettes, medians)."""
    return click.option("--sample", type=POSITIVE, default=default, metavar="N", help=help)


def seed(help="random seed (default 0), e.g. 7"):
    return click.option("--seed", type=SEED, default=0, metavar="SEED", help=help)


threads = click.option(
    "--threads", "n_threads", type=POSITIVE, metavar="N", help="threads (default: all), e.g. 2"
)


cluster = compose(
    click.option(
        "--workers",
        type=POSITIVE,
        metavar="N",
        help="run on a Dask cluster of N worker processes started for this run (needs "
        "pip install 'fastseg[dask]'), e.g. 2",
    ),
    click.option(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a running Dask cluster, e.g. tcp://10.0.0.5:8786",
    ),
    click.option(
        "--persist",
        is_flag=True,
        help="with --workers/--scheduler: keep the decoded rows in the workers' memory "
        "between passes (faster; Dask spills them to disk when memory runs short)",
    ),
)


def k_range(help, default=None, required=True):
    """--k-range: required unless it has a default or ``required=False`` (then None if not
    given)."""
    given = {"default": default} if default is not None else {"required": required}
    return click.option("--k-range", type=K_RANGE, metavar="K_RANGE", help=help, **given)


def listening(default_port, host_help):
    """--host and --port of a command that serves (serve, dashboard): loopback by default."""
    return compose(
        click.option(
            "--host",
            default="127.0.0.1",
            metavar="HOST",
            help=f"address to listen on (default 127.0.0.1: this machine only); {host_help}",
        ),
        click.option(
            "--port",
            type=PORT,
            default=default_port,
            metavar="PORT",
            help=f"port to listen on (default {default_port}), e.g. {default_port + 1}",
        ),
    )
