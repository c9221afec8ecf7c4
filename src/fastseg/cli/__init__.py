"""The ``fastseg`` command: a thin shell over the library. Errors are one line and exit 2.

One module per command (``fit.py``, ``select_k.py``, ...), imported when its command runs or
help lists it; the options they share are declared once, in ``options.py``. A command imports
the library (Numba, Polars: about 0.4 s) only in its body, so ``--help``, ``--version`` and a
usage error answer at once. A user's mistake (a ``FastsegError``, an ``OSError``, a usage error)
is one line and exit 2; anything else is a bug in fastseg: its traceback, a line asking for a
report, exit 1.
"""

import atexit
import os
import signal
import sys

from .. import interrupts

EXIT_INTERRUPTED = 130


def main(argv=None) -> int:
    """Run ``fastseg`` with ``argv`` (default: the command line); returns the exit status.

    Everything else is imported inside: an interrupt at any moment after Python's own start-up,
    imports included, is one line and exit 130, and the outputs are published whole or not at
    all (``fastseg.io.output.Outputs``).
    """
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    try:
        with interrupts.watched():
            from .app import run

            code = run(args)
    except BaseException:  # (a Rust panic in an import cut short is not even an Exception)
        if not interrupts.interrupted():
            raise
    if interrupts.interrupted():  # (also when Python swallowed it, in a __del__)
        print("fastseg: interrupted; no partial output was left behind", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


def entry():
    """The ``fastseg`` program (``python -m fastseg`` too): ``main``, then exit.

    After a Ctrl-C the process ends by ``os._exit(130)``: an interrupt that lands inside
    Numba's or Polars' import leaves a flag in the interpreter that would make it end by
    SIGINT instead (status -2 to a parent process, 130 only to a shell), whatever ``main``
    returned; nothing is left to clean up then, the outputs were discarded already. Once a
    run has ended, its outputs are published and closed: the exit handlers run (Ctrl-C
    ignored meanwhile, it would kill the process by SIGINT though the run has said it is
    done) and the process ends without the interpreter's teardown, a third of a second with
    Numba and Polars loaded.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    if code == EXIT_INTERRUPTED:
        os._exit(code)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # (SIG_IGN outlasts the clean-up)
    atexit._run_exitfuncs()  # what an exit runs (logging, multiprocessing's clean-up) ...
    os._exit(code)  # ... without tearing the interpreter down: 0.3 s with Numba and Polars
