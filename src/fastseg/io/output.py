"""Atomic outputs: each a file without a name (``O_TMPFILE``; elsewhere a hidden temporary file
beside the target) until complete, the outputs of one run published together or not at all."""

import errno
import os
import tempfile
from contextlib import contextmanager

from .. import interrupts
from ..errors import FastsegError


def _mode_for(path):
    """The mode a plain open() would give ``path`` (an existing file's mode is kept)."""
    if os.path.exists(path):
        return os.stat(path).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def check_output_path(path, *, overwrite, inputs=()):
    """Fail before any work if ``path`` cannot be written, or is one of the ``inputs`` files
    (see ``input_files``); returns its folder."""
    path = os.fspath(path)
    if path.endswith(("/", os.sep)):
        raise FastsegError(f"cannot write '{path}': it names a folder (ends in '/'); give a file")
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


@contextmanager
def said_if_disk_full(what, remedy="free space or write it elsewhere"):
    """Turn "No space left on device" (or an exceeded quota) while writing ``what`` into one
    line naming it and what to do (it surfaced as a failure to read the input, after the fit)."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise FastsegError(f"cannot write {what}: the disk is full; {remedy}") from None


def _exists(path):
    return FastsegError(f"'{path}' already exists: choose another name or pass --overwrite")


def input_files(*inputs):
    """The files behind inputs (model files, data paths, globs, folders; frames are none)."""
    from .paths import resolve_input_paths

    files = []
    for item in inputs:
        if isinstance(item, (str, os.PathLike)) or (
            isinstance(item, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in item)
        ):
            try:
                files += resolve_input_paths(item) if item else []
            except FastsegError:
                continue  # a missing input is its reader's error, said there
    return files


class Outputs:
    """The output files of one run, published together or not at all.

    ``check`` each path before any work (a folder that exists and is writable, not an input,
    not taken without ``overwrite``, not two outputs on one path); write each to the
    temporary path ``file`` yields; ``publish`` once all are complete. Until then every output
    is a file without a name (Linux ``O_TMPFILE``; elsewhere a hidden file beside its
    target): an error, a Ctrl-C or even SIGKILL before ``publish`` leaves nothing behind, and
    the old files (or none) stay as they were.
    """

    def __init__(self, *, overwrite=False, inputs=()):
        self.overwrite = overwrite
        self.inputs = list(inputs)
        self._checked = {}  # real path: the path as given
        self._staged = []

    def check(self, path):
        """Fail before any work if ``path`` cannot be one of this run's outputs."""
        path = os.fspath(path)
        check_output_path(path, overwrite=self.overwrite, inputs=self.inputs)
        real = os.path.realpath(path)
        if real in self._checked:
            raise FastsegError(f"two outputs of this run cannot both be written to '{path}'")
        self._checked[real] = path

    def _staged_reals(self):
        return {os.path.realpath(s.path) for s in self._staged}

    @contextmanager
    def file(self, path):
        """Yield a temporary path to write ``path`` to; it waits, unnamed, for ``publish``."""
        path = os.fspath(path)
        real = os.path.realpath(path)
        if real not in self._checked:
            self.check(path)
        elif real in self._staged_reals():
            raise FastsegError(f"two outputs of this run cannot both be written to '{path}'")
        staged = _Staged(path)
        try:
            with said_if_disk_full(f"'{path}'"):
                yield staged.tmp
                staged.finish()
        except BaseException:
            staged.discard()
            raise
        self._staged.append(staged)

    def publish(self):
        """Give every finished output its name, all or none (a Ctrl-C that came before this
        publishes nothing). Without ``overwrite`` each name is made by a hard link, which
        fails if the name exists: a run that lost a race to another one writing the same
        output gets an error, never a clobbered file (a check before the work cannot promise
        that). With ``overwrite`` the old file is kept under a hidden name until all are
        published, and put back if one fails."""
        done = []
        with interrupts.held():
            try:
                for staged in self._staged:
                    done.append(staged.publish(self.overwrite))
            except BaseException:
                for path, old in reversed(done):
                    _put_back(path, old)
                raise
            finally:
                self.discard()
        for _, old in done:
            if old is not None:
                os.unlink(old)

    def discard(self):
        """Drop every output not published (the end of a failed run)."""
        for staged in self._staged:
            staged.discard()
        self._staged = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.discard()


def _put_back(path, old):
    """Undo one publication: the old file back under its name, or the new one removed."""
    if old is None:
        os.unlink(path)
    else:
        os.replace(old, path)


@contextmanager
def atomic_output(path, *, overwrite=True):
    """Yield a temporary path for the output; it becomes ``path`` only once complete (an
    ``Outputs`` of one file)."""
    with Outputs(overwrite=overwrite) as outputs:
        with outputs.file(path) as tmp:
            yield tmp
        outputs.publish()


class _Staged:
    """One output while it is written: a file without a name where the file system allows
    (``O_TMPFILE``: nothing to clean up, even after SIGKILL), else a hidden file beside it."""

    def __init__(self, path):
        self.path = path
        self.folder = os.path.dirname(os.path.abspath(path))
        self.fd = _unnamed_file(self.folder)
        if self.fd is not None:
            self.tmp = f"/proc/self/fd/{self.fd}"
            return
        try:
            fd, self.tmp = tempfile.mkstemp(
                prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=self.folder
            )
        except PermissionError:
            raise FastsegError(
                f"cannot write '{path}': folder '{self.folder}' is not writable"
            ) from None
        os.close(fd)

    def finish(self):
        """The mode a plain open() would give the file (mkstemp makes it 0600), on disk."""
        fd = self.fd if self.fd is not None else os.open(self.tmp, os.O_RDONLY)
        try:
            os.fchmod(fd, _mode_for(self.path))
            os.fsync(fd)
        finally:
            if fd != self.fd:
                os.close(fd)

    def publish(self, overwrite):
        """Name the file ``path``; returns (path, the old file's hidden name or None)."""
        name = os.path.basename(self.path)
        if not overwrite:
            try:
                self._link(name)
            except FileExistsError:
                raise _exists(self.path) from None
            return self.path, None
        old = _hidden_link(self.folder, name, self.path) if os.path.lexists(self.path) else None
        try:
            os.replace(_hidden_link(self.folder, name, self._link), self.path)
        except BaseException:
            if old is not None:
                os.unlink(old)
            raise
        return self.path, old

    def _link(self, name):
        """Link the finished file as ``name`` in its folder (fails if ``name`` exists)."""
        if self.fd is None:
            os.link(self.tmp, os.path.join(self.folder, name))
            return
        # A folder descriptor makes os.link call linkat(AT_SYMLINK_FOLLOW), which can link
        # the file behind /proc/self/fd/N (plain link() refuses it).
        folder_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.link(self.tmp, name, dst_dir_fd=folder_fd)
        finally:
            os.close(folder_fd)

    def discard(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        elif os.path.exists(self.tmp):
            os.unlink(self.tmp)


def _hidden_link(folder, name, source):
    """A new hidden name in ``folder`` for ``source`` (a path, or a function that links to a
    name it is given); returns its path."""
    for attempt in range(100):
        hidden = f".{name}.{os.getpid()}.{attempt}.tmp"
        try:
            if callable(source):
                source(hidden)
            else:
                os.link(source, os.path.join(folder, hidden), follow_symlinks=False)
            return os.path.join(folder, hidden)
        except FileExistsError:
            continue
    raise FastsegError(f"cannot write '{os.path.join(folder, name)}': no free temporary name")


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
