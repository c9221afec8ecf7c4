"""Atomic output: write to a temporary file beside the target, rename into place when complete."""

import os
import tempfile
from contextlib import contextmanager

from .errors import FastsegError


@contextmanager
def atomic_output(path, *, overwrite=True):
    """Yield a temporary path in the target's folder; rename it to ``path`` only on success.

    An interrupted or failed write leaves the old file (or none) and no temporary file.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FastsegError(f"cannot write '{path}': folder '{folder}' does not exist")
    if os.path.exists(path) and not overwrite:
        raise FastsegError(f"'{path}' already exists: choose another name or pass --overwrite")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    except PermissionError:
        raise FastsegError(f"cannot write '{path}': folder '{folder}' is not writable") from None
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
