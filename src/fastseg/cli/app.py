"""The ``fastseg`` command's commands and how it reports errors (see ``fastseg.cli``)."""

import os
import sys
import traceback
import warnings
from importlib import import_module

import click

from .. import interrupts
from .._version import __version__
from ..errors import FastsegError

EXIT_BUG = 1
EXIT_USAGE = 2

COMMANDS = {  # command: its module and function, in the order --help lists them
    "fit": "fit",
    "select-k": "select_k",
    "compare": "compare",
    "profile": "profile",
    "explain": "explain",
    "report": "report",
    "dashboard": "dashboard",
    "predict": "predict",
    "serve": "serve",
    "drift": "drift",
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
        return getattr(import_module(f"{__package__}.{module}"), module)


@click.group(
    cls=_Commands,
    help="The fastseg command: a thin shell over the library. Errors are one line and exit 2.",
    no_args_is_help=False,  # a missing command is a usage error, like any other
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="fastseg", message="%(prog)s %(version)s")
def cli():
    pass


def run(args) -> int:
    """Run ``fastseg`` with ``args``; returns the exit status (a Ctrl-C is ``main``'s)."""
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _note  # the library's warnings, as one-line notes
            with cli.make_context("fastseg", args) as ctx:
                cli.invoke(ctx)
    except Exception as exc:
        if interrupts.interrupted():  # an error a Ctrl-C caused (an import cut short)
            raise KeyboardInterrupt from None
        return _failure(exc)
    return 0


def _failure(exc):
    """Say what went wrong; returns the exit status."""
    if isinstance(exc, click.exceptions.Exit):  # --help, --version
        return exc.exit_code
    if isinstance(exc, click.UsageError):
        where = exc.ctx.command_path if exc.ctx else "fastseg"
        _error(f"{_one_line(exc.format_message()).rstrip('.')} (see {where} --help)")
        return EXIT_USAGE
    if isinstance(exc, click.ClickException):
        _error(_one_line(exc.format_message()))
        return EXIT_USAGE
    if isinstance(exc, BrokenPipeError):  # stdout closed early (| head): the outputs are written
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit does not fail again
        return 0
    if isinstance(exc, FastsegError | OSError):
        _error(_one_line(str(exc)) or type(exc).__name__)
        return EXIT_USAGE
    traceback.print_exception(exc)
    print(
        "fastseg: internal error: this is a bug in fastseg; "
        "please report it with the traceback above",
        file=sys.stderr,
    )
    return EXIT_BUG


def _error(message):
    print(f"fastseg: error: {message}", file=sys.stderr)


def _one_line(text):
    return " ".join(text.split())


def _note(message, category, filename, lineno, file=None, line=None):
    print(f"fastseg: note: {message}", file=sys.stderr)
