"""Under memory pressure: with a budget smaller than the decoded data, the rows spill to disk,
peak RSS stays far below the in-memory run's, and the result is the same."""

import json
import os
import subprocess
import sys

import pytest

from fastseg.generate import FEATURES, write_customers

ROWS = 4_000_000
DECODED_MB = ROWS * len(FEATURES) * 4 / 2**20  # float32 rows: 122 MB


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    path = tmp_path_factory.mktemp("memory") / "customers.parquet"
    write_customers(path, ROWS, seed=4)
    return path


def fit_peak_mb(path, model, *extra):
    """Peak RSS (MB) of a `fastseg fit` process: ru_maxrss of that child alone."""
    argv = [
        sys.executable,
        "-m",
        "fastseg.cli",
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
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, proc.stderr.read().decode()
    return usage.ru_maxrss / 1024


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss of one child: Linux")
def test_a_small_budget_keeps_the_rows_out_of_memory_with_the_same_result(big, tmp_path):
    spill = tmp_path / "spill"
    spill.mkdir()
    in_ram = fit_peak_mb(big, tmp_path / "ram.json")
    budget = 16
    spilled = fit_peak_mb(
        big, tmp_path / "spilled.json", "--memory-budget", f"{budget}MB", "--spill-dir", str(spill)
    )
    # The decoded rows beyond the budget are on disk, not in memory: at least 80 % of them.
    assert in_ram - spilled > 0.8 * (DECODED_MB - budget), (in_ram, spilled)
    ram, disk = (json.loads((tmp_path / f).read_text()) for f in ("ram.json", "spilled.json"))
    assert ram["cluster_centers"] == disk["cluster_centers"]
    assert ram["metrics"]["cluster_sizes"] == disk["metrics"]["cluster_sizes"]
    assert list(spill.iterdir()) == []  # the spill file left with the process
