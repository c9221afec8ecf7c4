"""The ``fastseg`` command: a thin shell over the library. Errors are one line and exit 2.

One module per command (``fit.py``, ``select_k.py``, ...), imported when its command runs or
help lists it; the options they share are declared once, in ``options.py``. A command imports
the library (Numba, Polars: about 0.4 s) only in its body, so ``--help``, ``--version`` and a
usage error answer at once. A user's mistake (a ``FastsegError``, an ``OSError``, a usage error)
is one line and exit 2; anything else is a bug in fastseg: its traceback, a line asking for a
report, exit 1.
"""

import os
import sys
import traceback
import warnings
from importlib import import_module

import click

from .. import __version__
from ..errors import FastsegError

EXIT_BUG = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

COMMANDS = {  # command: its module and function, in the order --help lists them
    "fit": "fit",
    "select-k": "select_k",
    "profile": "profile",
    "report": "report",
    "predict": "predict",
    "generate": "generate",
    "demo": "demo",
}


class _Commands(click.Group):
    """The commands of COMMANDS, each module imported on first use."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module = COMMANDS[name]
        return getattr(import_module(f"{__name__}.{module}"), module)


@click.group(
    cls=_Commands,
    help=__doc__.splitlines()[0],
    no_args_is_help=False,  # a missing command is a usage error, like any other
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="fastseg", message="%(prog)s %(version)s")
def cli():
    pass


def main(argv=None) -> int:
    """Run ``fastseg`` with ``argv`` (default: the command line); returns the exit status."""
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _note  # the library's warnings, as one-line notes
            with cli.make_context("fastseg", args) as ctx:
                cli.invoke(ctx)
    except click.exceptions.Exit as exc:  # --help, --version
        return exc.exit_code
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "fastseg"
        _error(f"{_one_line(exc.format_message()).rstrip('.')} (see {where} --help)")
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fastseg: interrupted; no partial output was left behind", file=sys.stderr)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        _error(_one_line(exc.format_message()))
        return EXIT_USAGE
    except BrokenPipeError:  # stdout closed early (| head): the outputs are written; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit does not fail again
        return 0
    except (FastsegError, OSError) as exc:
        _error(_one_line(str(exc)) or type(exc).__name__)
        return EXIT_USAGE
    except Exception:
        traceback.print_exc()
        print(
            "fastseg: internal error: this is a bug in fastseg; "
            "please report it with the traceback above",
            file=sys.stderr,
        )
        return EXIT_BUG
    return 0


def _error(message):
    print(f"fastseg: error: {message}", file=sys.stderr)


def _one_line(text):
    return " ".join(text.split())


def _note(message, category, filename, lineno, file=None, line=None):
    print(f"fastseg: note: {message}", file=sys.stderr)
