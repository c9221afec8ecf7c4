"""Under memory pressure: with a budget smaller than the decoded data, the rows spill to disk,
peak RSS stays far below the in-memory run's, and the result is the same."""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from fastseg.datasets import FEATURES, write_customers

ROWS = 4_000_000
DECODED_MB = ROWS * len(FEATURES) * 4 / 2**20  # float32 rows: 122 MB


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    path = tmp_path_factory.mktemp("memory") / "customers.parquet"
    write_customers(path, ROWS, seed=4)
    return path


# The child reports its own VmHWM: a forked child's ru_maxrss starts at the parent's peak
# (this test process's), but VmHWM is reset when the child execs Python.
PEAK = (
    "import sys; from fastseg.cli import main; code = main(sys.argv[1:]); "
    "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]); "
    "sys.exit(code)"
)


def fit_peak_mb(path, model, *extra):
    """Peak RSS (MB) of a `fastseg fit` process."""
    argv = [
        sys.executable,
        "-c",
        PEAK,
        "fit",
        str(path),
        "--k",
        "6",
        "--features",
        ",".join(FEATURES),
        "--model",
        str(model),
        "--max-iter",
        "10",
        "--quiet",
        *extra,
    ]
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1]) / 1024


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM is Linux's")
def test_a_small_budget_keeps_the_rows_out_of_memory_with_the_same_result(big, tmp_path):
    spill = tmp_path / "spill"
    spill.mkdir()
    in_ram = fit_peak_mb(big, tmp_path / "ram.json")
    budget = 16
    spilled = fit_peak_mb(
        big, tmp_path / "spilled.json", "--memory-budget", f"{budget}MB", "--spill-dir", str(spill)
    )
    # The decoded rows beyond the budget are on disk, not in memory (measured: 98 of the
    # 106 MB; the margin absorbs allocator noise).
    assert in_ram - spilled > 0.6 * (DECODED_MB - budget), (in_ram, spilled)
    ram, disk = (json.loads((tmp_path / f).read_text()) for f in ("ram.json", "spilled.json"))
    assert ram["cluster_centers"] == disk["cluster_centers"]
    assert ram["metrics"]["cluster_sizes"] == disk["metrics"]["cluster_sizes"]
    assert list(spill.iterdir()) == []  # the spill file left with the process


# ----- the labels pass: memory follows the batch, not the rows ------------------------------
BASE_ROWS = 1_000_000


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """One 1M-row file and a folder of four copies of it (4M rows)."""
    folder = tmp_path_factory.mktemp("copies")
    one = folder / "one" / "part-0.parquet"
    one.parent.mkdir()
    write_customers(one, BASE_ROWS, seed=6)
    four = folder / "four"
    four.mkdir()
    for i in range(4):
        os.link(one, four / f"part-{i}.parquet")
    return one, four / "*.parquet"


def peak_mb(*argv):
    """Peak RSS (MB) of a `fastseg ...` process."""
    done = subprocess.run([sys.executable, "-c", PEAK, *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1]) / 1024


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM is Linux's")
def test_labels_and_drift_hold_the_same_memory_for_four_times_the_rows(copies, tmp_path):
    one, four = copies
    model = tmp_path / "m.json"
    features = ["--features", "age,income,monthly_charge,tenure_months", "--quiet"]
    fit = ["fit", "--k", "5", "--max-iter", "5", "--memory-budget", "16MB", *features]
    assert peak_mb(*fit[:1], str(one), *fit[1:], "--model", str(model)) > 0

    def predict(data, out):
        return peak_mb("predict", str(model), str(data), "--out", str(out), "--quiet")

    def fit_labels(data, out):
        return peak_mb(*fit[:1], str(data), *fit[1:], "--labels", str(out))

    def drift(data, out):  # against the model's profile: one pass
        return peak_mb("drift", str(model), str(data), "--quiet")

    def drift_by_id(data, out):  # two passes, and the customers joined on disk by id
        argv = ["--reference", str(one), "--id", "customer_id", "--spill-dir", str(tmp_path)]
        return peak_mb("drift", str(model), str(data), *argv, "--quiet")

    def kprototypes_labels(data, out):  # its own decoded store, spilled past the budget too
        mixed = ["--algorithm", "kprototypes", "--categorical", "region", "--labels", str(out)]
        return peak_mb(*fit[:1], str(data), *fit[1:], *mixed)

    for run in (predict, fit_labels, drift, drift_by_id, kprototypes_labels):
        small = run(one, tmp_path / f"{run.__name__}-1.parquet")
        large = run(four, tmp_path / f"{run.__name__}-4.parquet")
        # every input column is written; 4x the rows, within 15 % of the memory (the labels
        # pass read 55 MB more per million rows before it shared the fit's reader)
        assert large <= 1.15 * small, (run.__name__, small, large)
    written = pq.ParquetFile(tmp_path / "fit_labels-4.parquet").metadata
    assert written.num_rows == 4 * BASE_ROWS
