"""Atomic output: write to a temporary file beside the target, rename into place when complete."""

import os
import tempfile
from contextlib import contextmanager

from .errors import FastsegError


def _settle(tmp, path):
    """Give the new file the mode a plain open() would (mkstemp makes it 0600), flush to disk."""
    if os.path.exists(path):
        mode = os.stat(path).st_mode & 0o777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_output_path(path, *, overwrite):
    """Fail before any work if ``path`` cannot be written; returns its folder."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FastsegError(f"cannot write '{path}': folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK):
        raise FastsegError(f"cannot write '{path}': folder '{folder}' is not writable")
    if os.path.isdir(path):
        raise FastsegError(f"cannot write '{path}': it is a folder; give a file name")
    if os.path.exists(path) and not overwrite:
        raise FastsegError(f"'{path}' already exists: choose another name or pass --overwrite")
    return folder


@contextmanager
def atomic_output(path, *, overwrite=True):
    """Yield a temporary path in the target's folder; rename it to ``path`` only on success.

    An interrupted or failed write leaves the old file (or none) and no temporary file.
    """
    path = os.fspath(path)
    folder = check_output_path(path, overwrite=overwrite)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    except PermissionError:
        raise FastsegError(f"cannot write '{path}': folder '{folder}' is not writable") from None
    os.close(fd)
    try:
        yield tmp
        _settle(tmp, path)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
