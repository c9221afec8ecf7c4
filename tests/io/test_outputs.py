"""The outputs of one run are published together or not at all, and Ctrl-C at any moment
publishes nothing: exit 130, one line."""

import os
import signal
import subprocess
import sys
import time

import polars as pl
import pytest

from fastseg.cli import main
from fastseg.errors import FastsegError
from fastseg.io import output
from fastseg.io.output import Outputs

FIT = ["--k", "3", "--features", "age,income", "--quiet"]


def staged(outputs, path, text):
    with outputs.file(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def test_nothing_is_published_until_every_output_is_complete(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    with pytest.raises(RuntimeError):
        with Outputs() as outputs:
            staged(outputs, a, "a")
            with outputs.file(b):
                raise RuntimeError("the second output failed")
    assert os.listdir(tmp_path) == []
    with Outputs() as outputs:
        staged(outputs, a, "a")
        staged(outputs, b, "b")
        assert os.listdir(tmp_path) == []  # complete, but not yet published
        outputs.publish()
    assert a.read_text() == "a" and b.read_text() == "b"


def test_a_publication_that_fails_halfway_is_undone(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    with Outputs() as outputs:
        staged(outputs, a, "mine")
        staged(outputs, b, "mine")
        b.write_text("another run's")  # it published b first: a is taken back too
        with pytest.raises(FastsegError, match="already exists"):
            outputs.publish()
    assert not a.exists() and b.read_text() == "another run's"
    assert sorted(os.listdir(tmp_path)) == ["b.txt"]


def test_with_overwrite_the_old_files_come_back_if_the_publication_fails(tmp_path, monkeypatch):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old a")
    b.write_text("old b")
    real = output._Staged.publish

    def fail_on_b(self, overwrite):
        if self.path == str(b):
            raise OSError("No space left on device")
        return real(self, overwrite)

    monkeypatch.setattr(output._Staged, "publish", fail_on_b)
    with Outputs(overwrite=True) as outputs:
        staged(outputs, a, "new a")
        staged(outputs, b, "new b")
        with pytest.raises(OSError):
            outputs.publish()
    assert (a.read_text(), b.read_text()) == ("old a", "old b")
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt"]  # no hidden copy left


def test_every_output_path_is_checked_before_any_work(customers, tmp_path, capsys):
    labels = tmp_path / "l.parquet"
    model = f"{tmp_path / 'new.json'}/"
    code = main(["fit", str(customers), *FIT, "--labels", str(labels), "--model", model])
    assert code == 2 and "names a folder" in capsys.readouterr().err
    (tmp_path / "m.json").write_text("taken")
    code = main(["fit", str(customers), *FIT, "--labels", str(labels), "--model",
                 str(tmp_path / "m.json")])  # fmt: skip
    assert code == 2 and "already exists" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["m.json"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_interrupt_python_swallowed_still_stops_the_run(
    customers, tmp_path, capsys, monkeypatch
):
    """Raised inside a ``__del__`` (as in pyarrow's ``ParquetWriter.__del__``), a
    KeyboardInterrupt is printed as "Exception ignored" and lost: the run once went on to
    publish and exit 0."""
    from fastseg.workflow import fit

    class Swallows:
        def __del__(self):  # Ctrl-C arrives here: Python prints it and carries on
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)

    real = fit.write_labels

    def labels_then_ctrl_c(*args, **kwargs):
        written = real(*args, **kwargs)
        Swallows()
        return written

    monkeypatch.setattr(fit, "write_labels", labels_then_ctrl_c)
    labels, model = tmp_path / "l.parquet", tmp_path / "m.json"
    code = main(["fit", str(customers), *FIT, "--labels", str(labels), "--model", str(model)])
    err = capsys.readouterr().err
    assert code == 130 and "interrupted" in err
    assert os.listdir(tmp_path) == []
    assert main(["fit", str(customers), *FIT, "--model", str(model)]) == 0  # the next run


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """Enough rows that the labels pass takes a while."""
    from fastseg.datasets import write_customers

    path = tmp_path_factory.mktemp("large") / "c.parquet"
    write_customers(path, 1_000_000, seed=1)
    return path


def fit_in_child(data, folder):
    argv = [sys.executable, "-m", "fastseg", "fit", str(data), "--k", "4", "--features",
            "age,income,tenure_months", "--labels", str(folder / "l.parquet"), "--model",
            str(folder / "m.json")]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def interrupted_child(child, folder):
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert err.strip() == "fastseg: interrupted; no partial output was left behind"
    assert os.listdir(folder) == []


@pytest.mark.parametrize("library", ["/numpy/", "_polars_runtime", "/llvmlite/"])
def test_ctrl_c_during_start_up_is_one_line(large, tmp_path, library):
    """Interrupted while fastseg imports its libraries (one seen loading in the process's
    memory map): an interrupt in a library's import used to end in a traceback."""
    child = fit_in_child(large, tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline and not _maps(child.pid, library):
        time.sleep(0.002)
    interrupted_child(child, tmp_path)


def _maps(pid, text):
    try:
        with open(f"/proc/{pid}/maps") as f:
            return text in f.read()
    except OSError:
        return False


def test_ctrl_c_while_the_labels_are_written_publishes_nothing(large, tmp_path):
    child = fit_in_child(large, tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and not _writes_in(child.pid, tmp_path):
        time.sleep(0.005)
    assert child.poll() is None, "the run ended before it could be interrupted"
    interrupted_child(child, tmp_path)


def _writes_in(pid, folder):
    """Whether the process holds a file of ``folder`` open (an unnamed one: O_TMPFILE)."""
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return False
    return any(link.startswith(f"{folder}/") for link in links)


def test_ctrl_c_at_any_moment_is_all_or_nothing(large, tmp_path):
    """Interrupts spread over the run's second half and its end: exit 130 with nothing
    published, or exit 0 with both outputs whole; never a traceback, never one without the
    other."""
    for _ in range(2):  # the first run may compile the kernels: the second one is timed
        for name in os.listdir(tmp_path):
            os.unlink(tmp_path / name)
        start = time.time()
        child = fit_in_child(large, tmp_path)
        _, err = child.communicate(timeout=300)
        took = time.time() - start
        assert child.returncode == 0, err
    outcomes = set()
    for share in (0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05):
        for name in os.listdir(tmp_path):
            os.unlink(tmp_path / name)
        child = fit_in_child(large, tmp_path)
        time.sleep(took * share)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=300)
        assert "Traceback" not in err and "Exception ignored" not in err, err
        assert child.returncode in (0, 130), err
        if child.returncode == 130:
            assert os.listdir(tmp_path) == [], err
        else:
            assert sorted(os.listdir(tmp_path)) == ["l.parquet", "m.json"]
            rows = pl.scan_parquet(tmp_path / "l.parquet").select(pl.len()).collect().item()
            assert rows == 1_000_000
        outcomes.add(child.returncode)
    assert 130 in outcomes  # (the run's second half was interrupted at least once)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_one_line_naming_the_file_and_what_to_do():
    with pytest.raises(FastsegError, match="cannot write 'x.parquet': the disk is full; free"):
        with output.said_if_disk_full("'x.parquet'"), open("/dev/full", "wb") as f:
            f.write(b"0" * 100_000)
            f.flush()


@pytest.fixture()
def full_disk(tmp_path):
    """A 64 kB file system (root only)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small file system here (needs root)")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_while_writing_labels_or_spilling(full_disk, customers, capsys):
    big = full_disk / "l.parquet"
    code = main(["fit", str(customers), *FIT, "--labels", str(big), "--model",
                 str(full_disk / "m.json")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == (
        f"fastseg: error: cannot write '{big}': the disk is full; free space or write it elsewhere"
    )
    assert os.listdir(full_disk) == []
    code = main(["fit", str(customers), *FIT, "--spill-dir", str(full_disk),
                 "--memory-budget", "64KB"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "the spill file in" in err and "--spill-dir" in err, err


def test_ctrl_c_after_the_demo_wrote_its_data_still_stops_it(tmp_path):
    """Outputs that are not a command's last work (the demo's generated data) leave Ctrl-C
    working: only a command's final publication makes it ignore the interrupt."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp_path)}
    argv = [sys.executable, "-m", "fastseg", "demo", "--rows", "400000", "--quiet"]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)  # fmt: skip
    assert child.stdout.readline().startswith("generated 400,000")  # now segmenting them
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert err.strip() == "fastseg: interrupted; no partial output was left behind"
