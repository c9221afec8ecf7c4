"""Progress reports from deep inside a fit, shown as a bar on stderr when someone listens.

The library calls ``report(stage, done, total)``; it costs nothing unless a caller (the CLI)
has opened ``progress_bar()``. A context variable carries the bar, so no argument threads
through every function.
"""

import contextvars
import sys
import time
from contextlib import contextmanager

_current = contextvars.ContextVar("fastseg_progress", default=None)


def report(stage, done, total=None):
    """Tell the listening bar, if any, that ``done`` of ``total`` units of ``stage`` are done."""
    bar = _current.get()
    if bar is not None:
        bar.update(stage, done, total)


class _Bar:
    def __init__(self, stream, min_interval=0.1):
        self.stream = stream
        self.tty = stream.isatty()
        self.min_interval = min_interval
        self.stage = None
        self._last = 0.0
        self._line = ""

    def update(self, stage, done, total):
        if stage != self.stage:
            self._finish_line()
            self.stage = stage
            self._last = 0.0
        now = time.monotonic()
        finished = total is not None and done >= total
        if not self.tty or (now - self._last < self.min_interval and not finished):
            return
        self._last = now
        if total:
            frac = min(1.0, done / total)
            filled = int(frac * 30)
            text = f"{stage:<14} [{'#' * filled}{'.' * (30 - filled)}] {frac:6.1%}"
        else:
            text = f"{stage:<14} {done:,}"
        self._line = text
        self.stream.write("\r" + text)
        self.stream.flush()

    def _finish_line(self):
        if self.tty and self._line:
            self.stream.write("\r" + " " * len(self._line) + "\r")
            self.stream.flush()
        self._line = ""

    def close(self):
        self._finish_line()


@contextmanager
def progress_bar(enabled=True, stream=None):
    """Show library progress on ``stream`` (stderr) while the block runs."""
    if not enabled:
        yield
        return
    bar = _Bar(stream or sys.stderr)
    token = _current.set(bar)
    try:
        yield bar
    finally:
        _current.reset(token)
        bar.close()
