"""Atomic output: a file without a name (``O_TMPFILE``; elsewhere a hidden temporary file beside
the target) that becomes the target only once complete."""

import os
import tempfile
from contextlib import contextmanager

from ..errors import FastsegError


def _mode_for(path):
    """The mode a plain open() would give ``path`` (an existing file's mode is kept)."""
    if os.path.exists(path):
        return os.stat(path).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _settle(tmp, path):
    """Give the new file the mode a plain open() would (mkstemp makes it 0600), flush to disk."""
    os.chmod(tmp, _mode_for(path))
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_output_path(path, *, overwrite, inputs=()):
    """Fail before any work if ``path`` cannot be written, or is one of the ``inputs`` files
    (see ``input_files``); returns its folder."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FastsegError(f"cannot write '{path}': folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK):
        raise FastsegError(f"cannot write '{path}': folder '{folder}' is not writable")
    if os.path.isdir(path):
        raise FastsegError(f"cannot write '{path}': it is a folder; give a file name")
    if os.path.exists(path) and not overwrite:
        raise _exists(path)
    real = os.path.realpath(path)
    for item in inputs:
        if os.path.realpath(item) == real:
            raise FastsegError(
                f"'{path}' is an input of this run: write the output elsewhere "
                "(not even --overwrite replaces an input)"
            )
    return folder


def _exists(path):
    return FastsegError(f"'{path}' already exists: choose another name or pass --overwrite")


def input_files(*inputs):
    """The files behind inputs (model files, Parquet paths, globs, folders; frames are none)."""
    from .tables import resolve_parquet_paths

    files = []
    for item in inputs:
        if isinstance(item, (str, os.PathLike)) or (
            isinstance(item, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in item)
        ):
            try:
                files += resolve_parquet_paths(item) if item else []
            except FastsegError:
                continue  # a missing input is its reader's error, said there
    return files


@contextmanager
def atomic_output(path, *, overwrite=True):
    """Yield a temporary path for the output; it becomes ``path`` only once complete.

    Where the file system allows (Linux ``O_TMPFILE``), the file has no name at all while it
    is written: a run killed even by SIGKILL leaves nothing behind. Elsewhere it is a hidden
    file beside the target, removed if the write fails or is interrupted. Either way the old
    file (or none) stays until the new one is whole.
    """
    path = os.fspath(path)
    folder = check_output_path(path, overwrite=overwrite)
    fd = _unnamed_file(folder)
    if fd is None:
        with _named_temporary(path, folder, overwrite) as tmp:
            yield tmp
        return
    try:
        yield f"/proc/self/fd/{fd}"
        os.fchmod(fd, _mode_for(path))
        os.fsync(fd)
        _publish(fd, path, folder, overwrite)
    finally:
        os.close(fd)


def _unnamed_file(folder):
    """A file descriptor of a new file without a name in ``folder``, or None if unsupported."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, flag | os.O_WRONLY, 0o600)
    except PermissionError:
        raise FastsegError(f"cannot write in folder '{folder}': it is not writable") from None
    except OSError:  # this file system has no unnamed files
        return None


def _publish(fd, path, folder, overwrite):
    """Give the finished file its name. Without ``overwrite``, link it to ``path`` directly: the
    link fails if ``path`` exists, so a run that lost a race to another one writing the same
    output gets an error, never a clobbered file (a check before the work cannot promise
    that). With ``overwrite``: a hidden name beside ``path``, renamed over it."""
    # A folder descriptor makes os.link call linkat(AT_SYMLINK_FOLLOW), which can link the
    # file behind /proc/self/fd/N (plain link() refuses it).
    folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    if not overwrite:
        try:
            os.link(f"/proc/self/fd/{fd}", os.path.basename(path), dst_dir_fd=folder_fd)
        except FileExistsError:
            raise _exists(path) from None
        finally:
            os.close(folder_fd)
        return
    try:
        for attempt in range(100):
            name = f".{os.path.basename(path)}.{os.getpid()}.{attempt}.tmp"
            try:
                os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=folder_fd)
                break
            except FileExistsError:
                continue
        else:
            raise FastsegError(f"cannot write '{path}': no free temporary name in '{folder}'")
    finally:
        os.close(folder_fd)
    name = os.path.join(folder, name)
    try:
        os.replace(name, path)
    except BaseException:
        os.unlink(name)
        raise


@contextmanager
def _named_temporary(path, folder, overwrite):
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    except PermissionError:
        raise FastsegError(f"cannot write '{path}': folder '{folder}' is not writable") from None
    os.close(fd)
    try:
        yield tmp
        _settle(tmp, path)
        if overwrite:
            os.replace(tmp, path)
        else:  # fails if another run published first: never a clobber
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise _exists(path) from None
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
