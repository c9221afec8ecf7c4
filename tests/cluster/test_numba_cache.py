"""Where Numba's cache goes when fastseg's folder is read-only (issue 12, item 21).

A folder "under a regular file" cannot be made even by root, so these tests block folders that
way and run as any user; the end-to-end test switches to ``nobody`` and needs root.
"""

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from numba.core import config as numba_config

import fastseg
from fastseg.cluster import numba_cache
from fastseg.cluster.numba_cache import enable_cache


@pytest.fixture()
def place(tmp_path, monkeypatch):
    """A module whose ``__pycache__`` cannot be made, a clean environment, and folders to offer.

    Every candidate starts blocked; a test unblocks the ones it wants with ``place.open(...)``.
    """
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, so no folder can be made under it")

    class Place:
        module = blocked / "kernels.py"
        xdg = tmp_path / "xdg"
        home = tmp_path / "home"
        temp = tmp_path / "temp"

        @staticmethod
        def open(*folders):
            for folder in folders:
                folder.mkdir(exist_ok=True)

    for name in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(Place.xdg))
    monkeypatch.setenv("HOME", str(blocked / "home"))
    monkeypatch.setattr(tempfile, "tempdir", str(blocked / "temp"))  # what gettempdir() gives
    monkeypatch.setattr(numba_config, "CACHE_DIR", "")
    monkeypatch.setattr(numba_cache, "_noted", False)
    Place.xdg.write_text("blocked until opened")
    return Place


def open_xdg(place):
    place.xdg.unlink()
    place.open(place.xdg)


def choose(place, module=None):
    """``enable_cache`` for the place's module: (its answer, numba's CACHE_DIR, the notes)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answer = enable_cache(module or place.module)
    notes = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    return answer, numba_config.CACHE_DIR, notes


def test_a_writable_pycache_beside_the_module_changes_nothing(place, tmp_path):
    module = tmp_path / "pkg" / "kernels.py"
    module.parent.mkdir()
    assert choose(place, module) == (True, "", [])
    assert (module.parent / "__pycache__").is_dir()  # made, as Numba would


def test_a_writable_numba_cache_dir_of_the_user_is_left_to_numba(place, tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    open_xdg(place)
    assert choose(place) == (True, "", [])


def test_an_unwritable_numba_cache_dir_falls_back_and_says_so(place, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(place.module.parent / "mine"))
    open_xdg(place)
    answer, folder, notes = choose(place)
    assert answer and folder == str(place.xdg / "fastseg" / "numba")
    assert len(notes) == 1
    assert "NUMBA_CACHE_DIR" in notes[0] and f"cached in {folder}" in notes[0]


def test_xdg_cache_home_comes_first(place):
    open_xdg(place)
    place.open(place.home, place.temp)
    answer, folder, notes = choose(place)
    assert answer and folder == str(place.xdg / "fastseg" / "numba")
    assert notes == [
        f"cannot write {place.module.parent / '__pycache__'}; "
        f"Numba's compiled kernels are cached in {folder}"
    ]


@pytest.mark.parametrize("xdg", ["unset", "relative", "blocked"])
def test_then_the_home_cache(place, monkeypatch, xdg):
    if xdg == "unset":
        monkeypatch.delenv("XDG_CACHE_HOME")
    elif xdg == "relative":  # ignored, as the XDG spec asks
        monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
        monkeypatch.chdir(place.home.parent)
    place.open(place.home)
    monkeypatch.setenv("HOME", str(place.home))
    answer, folder, _ = choose(place)
    assert answer and folder == str(place.home / ".cache" / "fastseg" / "numba")


def test_then_a_private_folder_in_the_temp_dir(place, monkeypatch):
    place.open(place.temp)
    monkeypatch.setattr(tempfile, "tempdir", str(place.temp))
    answer, folder, _ = choose(place)
    expected = place.temp / f"fastseg-numba-{os.geteuid()}"
    assert answer and folder == str(expected)
    assert stat.S_IMODE(expected.stat().st_mode) & 0o077 == 0


@pytest.mark.parametrize("unsafe", ["group-writable", "world-writable", "symlink", "a file"])
def test_an_existing_temp_folder_others_could_write_is_skipped(place, monkeypatch, unsafe):
    place.open(place.temp)
    monkeypatch.setattr(tempfile, "tempdir", str(place.temp))
    planted = place.temp / f"fastseg-numba-{os.geteuid()}"
    if unsafe == "symlink":
        place.open(place.home)
        planted.symlink_to(place.home)
    elif unsafe == "a file":
        planted.write_text("")
    else:
        planted.mkdir()
        planted.chmod(0o770 if unsafe == "group-writable" else 0o777)
    answer, folder, notes = choose(place)
    assert (answer, folder) == (False, "")
    assert "kernels compile on each run" in notes[0]
    if unsafe == "symlink":
        assert not any(place.home.iterdir())  # nothing written through it


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_temp_folder_owned_by_another_user_is_skipped(place, monkeypatch):
    place.open(place.temp)
    monkeypatch.setattr(tempfile, "tempdir", str(place.temp))
    planted = place.temp / f"fastseg-numba-{os.geteuid()}"
    planted.mkdir(mode=0o700)
    os.chown(planted, 65534, 65534)
    assert choose(place)[:2] == (False, "")


def test_with_nowhere_to_write_caching_is_off_with_one_note_per_process(place):
    answer, folder, notes = choose(place)
    assert (answer, folder) == (False, "")
    assert len(notes) == 1
    assert f"about {numba_cache.COMPILE_SECONDS} s slower start" in notes[0]
    assert choose(place) == (False, "", [])  # scores.py asks again: no second note


@pytest.mark.skipif(numba_config.DISABLE_JIT, reason="nothing is compiled or cached")
def test_numba_really_caches_a_kernel_in_the_chosen_folder(place, tmp_path):
    """A module written as kernels.py is, whose ``__pycache__`` is a file: Numba alone would
    raise "cannot cache function" at its import."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__pycache__").write_text("")
    module = package / "probe_kernels.py"
    module.write_text(
        "from numba import njit\n\n"
        "from fastseg.cluster.numba_cache import enable_cache\n\n"
        "CACHE = enable_cache(__file__)\n\n\n"
        "@njit(cache=CACHE)\n"
        "def twice(x):\n"
        "    return 2 * x\n"
    )
    open_xdg(place)
    spec = importlib.util.spec_from_file_location("fastseg_probe_kernels", module)
    probe = importlib.util.module_from_spec(spec)
    with pytest.warns(RuntimeWarning, match="cached in"):
        spec.loader.exec_module(probe)
    assert probe.CACHE and probe.twice(3) == 6
    assert list((place.xdg / "fastseg" / "numba").glob("*/probe_kernels.twice-*.nbi"))


# ----- end to end: installed by root, run by nobody ----------------------------------------
NOBODY = 65534


def as_nobody(args, *, tmpdir, package_parent, cwd):
    """Run ``python args`` as uid/gid nobody with no home, no XDG or Numba variables.

    The interpreter may sit where nobody cannot read (pyenv under /root): the child keeps
    CAP_DAC_READ_SEARCH, so it can read and search everything, as any user can read a
    system-wide install, while every write is checked against nobody's permissions.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "TMPDIR": str(tmpdir),
        "PYTHONPATH": str(package_parent),
        "LANG": "C.UTF-8",
    }
    drop = [
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
    ]
    return subprocess.run(
        [*drop, sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def root_owned():
    """A folder of root's in the system temp dir, 0755 like its parents: nobody can read in it
    without any capability, as ``os.access`` (fastseg's check of an output folder) requires."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv (util-linux) to run a child as nobody")
    base = Path(tempfile.mkdtemp(prefix="fastseg-numba-cache-test-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


@pytest.fixture(scope="module")
def installed(root_owned):
    """fastseg copied as root installs it: root's files, 0755 folders, no ``__pycache__``."""
    site = root_owned / "site-packages"
    source = Path(fastseg.__file__).parent
    shutil.copytree(source, site / "fastseg", ignore=shutil.ignore_patterns("__pycache__"))
    for folder, _, files in os.walk(site):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(Path(folder, name), 0o644)
    return site


@pytest.fixture()
def tmp_root(root_owned):
    """This test's own folder of root's, 0755."""
    folder = Path(tempfile.mkdtemp(dir=root_owned))
    folder.chmod(0o755)
    return folder


@pytest.fixture()
def shared(tmp_root):
    """A folder anyone may write (0777), holding a small Parquet file; the child's cwd."""
    folder = tmp_root / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    rng = np.random.default_rng(0)
    pl.DataFrame({"a": rng.standard_normal(500), "b": rng.standard_normal(500)}).write_parquet(
        folder / "customers.parquet"
    )
    return folder


def sticky_temp(path):
    path.mkdir()
    path.chmod(0o1777)  # as /tmp is
    return path


def test_installed_by_root_run_by_nobody_caches_in_a_private_temp_folder(
    installed, shared, tmp_root
):
    tmpdir = sticky_temp(tmp_root / "tmp")
    run = dict(tmpdir=tmpdir, package_parent=installed, cwd=shared)
    version = as_nobody(["-m", "fastseg", "--version"], **run)
    assert (version.returncode, version.stdout.strip()) == (0, f"fastseg {fastseg.__version__}")
    argv = ["customers.parquet", "--k", "3", "--features", "a,b", "--algorithm", "minibatch"]
    fit = as_nobody(["-m", "fastseg", "fit", *argv, "--model", "model.json"], **run)
    assert fit.returncode == 0, fit.stderr
    assert "Traceback" not in fit.stderr
    private = tmpdir / f"fastseg-numba-{NOBODY}"
    cluster = installed / "fastseg" / "cluster"
    assert f"note: cannot write {cluster / '__pycache__'}; " in fit.stderr  # the copy ran
    assert f"cached in {private}" in fit.stderr
    info = private.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (NOBODY, 0o700)
    assert list(private.glob("cluster_*/kernels.*.nbi"))
    assert (shared / "model.json").stat().st_uid == NOBODY
    assert not (cluster / "__pycache__").exists()


def test_with_nowhere_to_write_nobody_still_runs_with_caching_off(installed, shared, tmp_root):
    """The temp dir holds a ``fastseg-numba-65534`` that root planted: not nobody's, skipped."""
    tmpdir = sticky_temp(tmp_root / "tmp")
    planted = tmpdir / f"fastseg-numba-{NOBODY}"
    planted.mkdir(mode=0o755)
    run = dict(tmpdir=tmpdir, package_parent=installed, cwd=shared)
    version = as_nobody(["-m", "fastseg", "--version"], **run)
    assert version.returncode == 0 and "Traceback" not in version.stderr
    # Importing the kernel modules is where Numba raised; compiling them all takes ~15 s.
    imports = as_nobody(["-c", "import fastseg.cluster.kernels, fastseg.metrics.scores"], **run)
    assert imports.returncode == 0, imports.stderr
    assert "Traceback" not in imports.stderr
    assert imports.stderr.count("kernels compile on each run") == 1
    assert not any(planted.iterdir())
