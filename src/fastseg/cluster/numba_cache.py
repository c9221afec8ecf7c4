"""Where Numba caches fastseg's compiled kernels, when it cannot cache them beside the code.

Numba writes ``cache=True`` kernels to ``NUMBA_CACHE_DIR`` if set, else to ``__pycache__``
beside their module, else to ``~/.cache/numba``; with none writable (installed by root, run by
another user with no home) the decorator raises "cannot cache function" at import, and every
command that loads the kernels dies with a traceback. ``enable_cache`` is called by each kernel
module before its first decorator: it picks a writable folder, or turns caching off, and says
so once per process (for a fallback folder, only while it is still empty: the first run).
"""

import os
import stat
import tempfile
import warnings
from pathlib import Path

from numba.core import config as numba_config

# What caching saves a run: a 2,000-row ``fastseg fit`` took 17 s with no cache and 1.8 s with a
# warm one (Lloyd; 7 s against 1.6 s for mini-batch), Numba 0.68 on 2 cores.
COMPILE_SECONDS = 15

_noted = False


def enable_cache(module_file) -> bool:
    """Make sure Numba can cache the kernels of ``module_file``; False if nowhere can hold them.

    Order: ``__pycache__`` beside the module (Numba's own choice: nothing to do), the user's
    ``NUMBA_CACHE_DIR``, ``$XDG_CACHE_HOME/fastseg/numba``, ``~/.cache/fastseg/numba``, then
    ``<temp dir>/fastseg-numba-<uid>``, which must be this user's own and private. A fallback
    is set in ``numba.config.CACHE_DIR``, read when a kernel is decorated; Numba tries it before
    ``__pycache__``, so kernels of other packages decorated later in the process go there too.
    """
    if _writable(Path(module_file).parent / "__pycache__"):
        return True
    user_dir = os.environ.get("NUMBA_CACHE_DIR")
    if user_dir and _writable(Path(user_dir)):
        return True  # Numba reads it itself
    folder = next((f for f in _fallback_folders() if _writable(f)), None)
    if folder is not None:
        numba_config.CACHE_DIR = str(folder)
    if folder is None or not any(folder.iterdir()):  # said on the first run, not every run
        skipped = f"NUMBA_CACHE_DIR ({user_dir}) is not writable" if user_dir else None
        _note(folder, skipped or f"cannot write {Path(module_file).parent / '__pycache__'}")
    return folder is not None


def _fallback_folders():
    """Candidate cache folders after ``__pycache__`` and ``NUMBA_CACHE_DIR``, best first."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec says a relative path is to be ignored
        yield Path(xdg, "fastseg", "numba")
    try:
        yield Path.home() / ".cache" / "fastseg" / "numba"
    except RuntimeError:  # no HOME and no passwd entry
        pass
    private = _private_temp_folder()
    if private is not None:
        yield private


def _private_temp_folder():
    """``<temp dir>/fastseg-numba-<uid>``, made 0700; None if it exists and someone else could
    have planted files in it (another owner, group- or world-writable, not a plain folder)."""
    if not hasattr(os, "geteuid"):  # Windows: the temp folder is the user's own already
        return Path(tempfile.gettempdir(), "fastseg-numba")
    try:
        folder = Path(tempfile.gettempdir(), f"fastseg-numba-{os.geteuid()}")
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()  # lstat: a symlink planted there is refused, not followed
    except OSError:  # gettempdir found no writable temp dir, or mkdir failed
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        return None
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None
    return folder


def _writable(folder) -> bool:
    """Numba's own test of a cache folder: make it, then create a file in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def _note(folder, reason):
    """Say once per process where the cache went, or that kernels compile on each run."""
    global _noted
    if _noted:
        return
    _noted = True
    if folder is not None:
        where = f"Numba's compiled kernels are cached in {folder}"
    else:
        where = (
            f"no writable folder for Numba's cache: kernels compile on each run (about "
            f"{COMPILE_SECONDS} s slower start); set NUMBA_CACHE_DIR to a writable folder"
        )
    warnings.warn(f"{reason}; {where}", RuntimeWarning, stacklevel=3)
