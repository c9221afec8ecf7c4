"""Progress reports from deep inside a fit, shown as a bar on stderr when someone listens.

The library calls ``report(stage, done, total)``; it costs nothing unless a caller (the CLI)
has opened ``progress_bar()``. A context variable carries the bar, so no argument threads
through every function.
"""

import contextvars
import sys
from contextlib import contextmanager

_current = contextvars.ContextVar("fastseg_progress", default=None)


def report(stage, done, total=None):
    """Tell the listening bar, if any, that ``done`` of ``total`` units of ``stage`` are done."""
    bar = _current.get()
    if bar is not None:
        bar.update(stage, done, total)


class _Bar:
    """One tqdm bar per stage (rate and time left come with it), on a terminal only."""

    def __init__(self, stream, min_interval=0.1):
        self.stream = stream
        self.tty = stream.isatty()
        self.min_interval = min_interval
        self.stage = None
        self._bar = None

    def update(self, stage, done, total):
        if not self.tty:
            return
        if stage != self.stage or self._bar is None:
            from tqdm import tqdm  # 50 ms: only where a bar is drawn

            self._finish_line()
            self.stage = stage
            self._bar = tqdm(
                total=total,
                desc=f"{stage:<14}",
                file=self.stream,
                leave=False,
                mininterval=self.min_interval,
                dynamic_ncols=True,
                unit_scale=total is not None and total >= 10_000,
            )
        self._bar.update(max(0, done - self._bar.n))

    def _finish_line(self):
        if self._bar is not None:
            self._bar.close()  # leave=False: the line is wiped
            self._bar = None

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
