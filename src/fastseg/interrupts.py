"""Ctrl-C noticed even where Python swallows it.

Python turns SIGINT into a ``KeyboardInterrupt`` at the next bytecode, wherever that is; raised
inside a ``__del__`` (pyarrow's ``ParquetWriter.__del__`` runs at the end of a labels pass)
it is printed as "Exception ignored" and lost, and the run went on to exit 0. While a command
runs, the CLI's handler also records the interrupt, so the outputs are not published
(``fastseg.io.output.Outputs.publish`` asks ``interrupted()``) and the exit status is 130.
"""

import signal
import threading
from contextlib import contextmanager

_seen = False  # Ctrl-C came in the last watched() block
_watching = False
_preliminary = False  # outputs published now are not the command's last work


def interrupted():
    """Whether Ctrl-C came in the last (or current) ``watched()`` block, even if its
    exception was swallowed."""
    return _seen


def _on_interrupt(signum, frame):
    global _seen
    _seen = True
    raise KeyboardInterrupt


@contextmanager
def watched():
    """Record SIGINT while the block runs (the main thread only: where Python's handlers run)."""
    global _seen, _watching
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _seen, _watching = False, True
    previous = signal.signal(signal.SIGINT, _on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _watching = False


@contextmanager
def held():
    """Hold SIGINT back for a few system calls that must all happen or none (publishing the
    outputs). A Ctrl-C that came before is raised here, before any of them; one that comes
    during them (a fraction of a millisecond) is too late to stop anything and is dropped:
    the run has finished. In a ``watched()`` command the outputs are its last work, so Ctrl-C
    is ignored from then on, while it prints what it did: an exit status of 130 always means
    nothing was published (see ``preliminary`` for outputs that are not the last work)."""
    main = threading.current_thread() is threading.main_thread()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if main else None
    try:
        if (_watching and _seen) or (main and signal.SIGINT in signal.sigpending()):
            raise KeyboardInterrupt
        yield
        if main and signal.SIGINT in signal.sigpending():
            signal.sigtimedwait({signal.SIGINT}, 0)
        if main and _watching and not _preliminary:  # (watched() puts the handler back)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextmanager
def preliminary():
    """Outputs published in this block are not the command's last work (the demo's generated
    data, which it then segments): Ctrl-C keeps stopping the command after them."""
    global _preliminary
    _preliminary = True
    try:
        yield
    finally:
        _preliminary = False
