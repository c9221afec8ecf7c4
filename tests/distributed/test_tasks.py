"""Worker-side details of the Dask backend that need no cluster."""

import fcntl
import os
import tempfile
import threading
import time

import numpy as np

from fastseg.distributed import tasks


def test_kernels_are_warmed_one_process_at_a_time(monkeypatch):
    """A worker warms Numba's kernels under a machine-wide lock, so two processes never write
    the cache at once (Numba issue 4807); and only once per process."""
    monkeypatch.setattr(tasks, "_warmed", False)
    calls = []
    monkeypatch.setattr(tasks, "warm_kernels", lambda: calls.append(time.monotonic()))
    lock = os.path.join(tempfile.gettempdir(), f"fastseg-numba-{os.getuid()}.lock")
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another process warming
        waiting = threading.Thread(target=tasks._warm_once)
        waiting.start()
        time.sleep(0.3)
        assert calls == []  # blocked while the lock is held
        released = time.monotonic()
        fcntl.flock(held, fcntl.LOCK_UN)
    waiting.join(5)
    assert len(calls) == 1 and calls[0] >= released
    tasks._warm_once()
    assert len(calls) == 1


def test_warm_kernels_runs_every_kernel_a_task_uses():
    tasks.warm_kernels(n_features=5, n_clusters=3)  # no error: every signature compiles


def test_read_rows_of_a_fragment_across_files(tmp_path):
    """A fragment's rows, read from the row groups of two files, are those rows."""
    import polars as pl
    import pyarrow.parquet as pq

    from fastseg.preprocess.preprocessor import Preprocessor
    from fastseg.preprocess.settings import PreprocessSettings

    rng = np.random.default_rng(0)
    frames = [pl.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)}) for n in (700, 500)]
    for i, f in enumerate(frames):
        pq.write_table(f.to_arrow(), tmp_path / f"p{i}.parquet", row_group_size=128)
    pre = Preprocessor(PreprocessSettings(), 2, ["a", "b"])
    job = tasks.Job(str(tmp_path), ("a", "b"), "error", pre, 100)  # chunks of 4,096 rows
    read = tasks.Read()
    found = list(tasks.chunks(job, tasks.Fragment(0, 650, 900), (None, None), read=read))
    whole = pl.concat(frames).to_numpy().astype(np.float32)
    np.testing.assert_array_equal(np.concatenate([rows for _, rows, _ in found]), whole[650:900])
    assert read.source.n_dropped == 0


CHILD = """
import sys
import numpy as np
from fastseg.distributed import tasks
from fastseg.preprocess.preprocessor import Preprocessor
from fastseg.preprocess.settings import PreprocessSettings

def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

path, d = sys.argv[1], 16
names = tuple(f"x{j}" for j in range(d))
pre = Preprocessor(PreprocessSettings(), d, list(names))
job = tasks.Job(path, names, "error", pre, 65_536)
centers = np.zeros((8, d))
tasks.lloyd_step(job, tasks.Fragment(0, 0, 200_000), (None, None), centers)  # warm
before = peak()
tasks.lloyd_step(job, tasks.Fragment(0, 0, 1_000_000), (None, None), centers)
print(peak() - before)
"""


def test_a_task_streams_its_fragment_in_bounded_chunks(tmp_path):
    """A task's memory follows the chunk, not the fragment: an E-step over 1M rows x 16
    features (64 MB as float32) adds far less to the peak than one over 200k rows did."""
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1_000_000, 16)).astype(np.float32)
    table = pa.table({f"x{j}": X[:, j] for j in range(16)})
    pq.write_table(table, tmp_path / "wide.parquet", row_group_size=65_536)
    del X, table
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "wide.parquet")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    growth = int(out.stdout.split()[-1])
    assert growth < 24 * 2**20, f"peak grew {growth / 2**20:.1f} MB"
