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
    job = tasks.Job(str(tmp_path), ("a", "b"), "error", pre, 4096)
    rows, source = tasks.read_rows(job, tasks.Fragment(0, 650, 900), None)
    whole = pl.concat(frames).to_numpy().astype(np.float32)
    np.testing.assert_array_equal(rows, whole[650:900])
    assert source.n_dropped == 0
