"""The maintenance scripts in scripts/: quick checks that they still work with the benchmarks.

They are not part of the package, so nothing else would notice when a benchmark script renames
an option, a results file changes shape or the shell script stops parsing. Each check runs in
about a second: tiny data, results JSON copied from benchmarks/results, ``--dry-run``.
"""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS, RESULTS = ROOT / "scripts", ROOT / "benchmarks" / "results"


def load(name, folder=SCRIPTS):
    """Import ``folder/name.py`` as a module (scripts/ and benchmarks/ are not packages).

    The scripts put benchmarks/ on sys.path to import the benchmarks; other tests never see it."""
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    saved = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


@pytest.fixture(scope="module")
def make_data():
    return load("make_benchmark_data")


@pytest.fixture(scope="module")
def refresh():
    return load("refresh_readme_figures")


# ----- make_benchmark_data.py -------------------------------------------------------------------
def test_make_benchmark_data_writes_then_skips(make_data, tmp_path, capsys):
    assert make_data.main(["--rows", "500", "--data-dir", str(tmp_path)]) == 0
    small, warm = tmp_path / "customers_500.parquet", tmp_path / "customers_20000.parquet"
    assert pq.read_metadata(small).num_rows == 500
    assert pq.read_metadata(warm).num_rows == 20_000  # end_to_end/spill's warm-up file
    stamp = small.stat().st_mtime_ns
    capsys.readouterr()

    assert make_data.main(["--rows", "500", "--data-dir", str(tmp_path)]) == 0
    assert small.stat().st_mtime_ns == stamp  # checked, not written again
    assert capsys.readouterr().out.count("ok ") == 2


def test_make_benchmark_data_check_and_repair(make_data, tmp_path, capsys):
    bad = tmp_path / "customers_300.parquet"
    bad.write_bytes(b"not parquet")
    argv = ["--rows", "300", "--data-dir", str(tmp_path)]
    assert make_data.main([*argv, "--check"]) == 1  # damaged, and the warm-up file missing
    assert bad.read_bytes() == b"not parquet"  # --check writes nothing
    assert "damaged" in capsys.readouterr().out
    assert make_data.main(argv) == 0
    assert pq.read_metadata(bad).num_rows == 300


def test_make_benchmark_data_default_sizes_cover_the_suite(make_data):
    assert {1_000_000, 10_000_000, 100_000_000} <= set(make_data.suite_rows())


# ----- refresh_readme_figures.py ----------------------------------------------------------------
# The results the READMEs cite; their tables must come out with the README's figures.
CITED = [
    "compare-20261125-085534.json",
    "compare-20261125-085620.json",
    "end_to_end-20261125-085717.json",
    "cost_growth-20261125-085830.json",
    "spill-20261125-085913.json",
]


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    for name in CITED:
        shutil.copy(RESULTS / name, folder / name)
    return folder


def test_refresh_renders_the_cited_figures(refresh, results):
    bodies = refresh.blocks(results)
    assert set(bodies) == set(refresh.BLOCKS)
    # the newest compare file has only mini-batch results: the Lloyd block takes the older one
    assert "compare-20261125-085534.json" in bodies["compare"].splitlines()[0]
    assert "compare-20261125-085620.json" in bodies["minibatch"].splitlines()[0]
    expected = {
        "compare": "| 10M | fastseg KMeans | 1.114 | 2.04× | 706 | 20 | 947 of 9,940,035 |",
        "minibatch": "| 10M | 65,536 | fastseg MiniBatchKMeans | 1.05 | 47.1× | 264 | 0.9996 |",
        "end_to_end": "| 10M | fastseg CLI | 3.68 | 3.28x | 694 | 0.25 | 20 |",
        "cost_growth": "| 20M | 4.88 | 1.94 | 0.16 | 0.12 | 2.54 | 6.4 | 1,138 |",
        "spill": "| in memory | 25.8 | 4,096 | 28 | 231284417 |",
    }
    for name, row in expected.items():
        assert row in bodies[name].splitlines(), name
    assert "| 64 | 5.58 |" in bodies["cost_growth"]  # the k table follows the rows table


def test_refresh_write_replaces_only_marked_blocks(refresh, results, tmp_path, capsys):
    readme = tmp_path / "README.md"
    text = (
        "# Title\n\nprose before\n\n<!-- figures:spill -->\nold table\n<!-- /figures:spill -->"
        "\n\nprose between\n\n<!-- figures:cost_growth -->\n<!-- /figures:cost_growth -->\n"
        "\nprose after\n"
    )
    readme.write_text(text)
    argv = ["--results", str(results), "--readme", str(readme)]
    assert refresh.main([*argv, "--write"]) == 0
    new = readme.read_text()
    assert "old table" not in new
    for kept in (
        "# Title\n\nprose before\n\n<!-- figures:spill -->\n<!-- from ",
        "\n<!-- /figures:spill -->\n\nprose between\n\n<!-- figures:cost_growth -->\n",
        "\n<!-- /figures:cost_growth -->\n\nprose after\n",
    ):
        assert kept in new
    assert "| in memory | 25.8 | 4,096 | 28 | 231284417 |" in new
    assert "| 1M | 0.35 | 0.10 | 0.00 | 0.12 | 0.11 | 5.4 | 455 |" in new
    assert "(changed)" in capsys.readouterr().out

    assert refresh.main([*argv, "--write"]) == 0  # idempotent
    assert readme.read_text() == new
    assert "(unchanged)" in capsys.readouterr().out


def test_refresh_prints_blocks_and_notes_missing_results(refresh, tmp_path, capsys):
    (tmp_path / "spill-20261125-085913.json").write_bytes(
        (RESULTS / "spill-20261125-085913.json").read_bytes()
    )
    assert refresh.main(["--results", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("<!-- figures:spill -->\n<!-- from ")
    assert "<!-- /figures:spill -->" in out and "figures:compare" not in out
    assert "no results" in err and "compare" in err

    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    assert refresh.main(["--results", str(tmp_path), "--readme", str(readme), "--write"]) == 1
    assert readme.read_text() == "no markers here\n"


# ----- run_benchmarks.sh ------------------------------------------------------------------------
def run_sh(*args):
    return subprocess.run(
        ["bash", str(SCRIPTS / "run_benchmarks.sh"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_run_benchmarks_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPTS / "run_benchmarks.sh")]).returncode == 0
    assert run_sh("--help").returncode == 0
    assert run_sh("--no-such-option").returncode == 2


@pytest.mark.parametrize("mode", [[], ["--quick"]])
def test_run_benchmarks_passes_arguments_the_scripts_accept(mode, tmp_path):
    proc = run_sh(*mode, "--dry-run", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    commands = [shlex.split(ln[2:]) for ln in proc.stdout.splitlines() if ln.startswith("+ ")]
    scripts = [Path(cmd[1]).name for cmd in commands]
    assert scripts == [
        "make_benchmark_data.py",
        "compare.py",
        "compare.py",
        "end_to_end.py",
        "cost_growth.py",
        "spill.py",
        "labels_memory.py",
        "drift_speed.py",
        "assign_speed.py",
        "serve_load.py",
        "kprototypes_speed.py",
        "lloyd_speed.py",
        "startup.py",
        "refresh_readme_figures.py",
    ]
    sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmarks import each other by name
    try:
        for cmd in commands:
            path = ROOT / cmd[1]
            args = load(path.stem, path.parent).parse_args(cmd[2:])  # exits 2 on a bad option
            if path.parent.name == "benchmarks":
                assert args.out == tmp_path / "out"
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert not (tmp_path / "out").exists()  # --dry-run runs nothing
