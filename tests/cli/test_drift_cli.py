"""``fastseg drift``: the table, --json, --out, --fail-on, --threshold, and one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from fastseg.cli import main

DATA = Path(__file__).parents[1] / "data"
FEATURES = "age,income,tenure_months"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def periods(customers, tmp_path_factory):
    """A model of the customers, and a later period: incomes up by half, a new region."""
    folder = tmp_path_factory.mktemp("drift_cli")
    model = folder / "m.json"
    argv = [
        "fit",
        customers,
        "--k",
        "4",
        "--features",
        FEATURES + ",region",
        "--categorical",
        "region",
        "--missing",
        "drop",
        "--model",
        model,
        "--quiet",
    ]
    assert main([str(a) for a in argv]) == 0
    later = pl.read_parquet(customers).with_columns(
        pl.col("income") * 1.5,
        pl.when(pl.col("customer_id") % 7 == 0)
        .then(pl.lit("offshore"))
        .otherwise("region")
        .alias("region"),
    )
    new = folder / "q2.parquet"
    later.write_parquet(new)
    return model, customers, new


def test_table_and_verdict(periods, capsys):
    model, old, new = periods
    code, out, err = run(capsys, "drift", model, new, "--quiet")
    assert code == 0, err
    assert "verdict: retrain" in out
    assert "income" in out and "region (categorical)" in out and "segment" in out
    code, out, _ = run(capsys, "drift", model, old, "--quiet")
    assert code == 0 and "verdict: stable" in out


def test_json_and_migration(periods, capsys, tmp_path):
    model, old, new = periods
    argv = ["drift", model, new, "--reference", old, "--id", "customer_id", "--json", "--quiet"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["verdict"] == "retrain"
    income = next(f for f in doc["features"] if f["feature"] == "income")
    assert income["verdict"] == "retrain" and income["psi"] > 0.25
    region = next(f for f in doc["features"] if f["feature"] == "region")
    assert region["unseen_share"] == pytest.approx(1 / 7, abs=0.01)
    n = pl.scan_parquet(old).select(pl.len()).collect().item()
    assert sum(map(sum, doc["migration"]["matrix"])) + doc["migration"]["unassigned"] == n
    assert doc["migration"]["new"] == doc["migration"]["lost"] == 0


def test_out_file_and_fail_on(periods, capsys, tmp_path):
    model, old, new = periods
    out = tmp_path / "drift.json"
    code, printed, err = run(
        capsys, "drift", model, new, "--json", "--out", out, "--fail-on", "retrain"
    )
    assert code == 3, err  # the verdict reached --fail-on: a scheduled job can stop here
    assert printed == "" and json.loads(out.read_text())["verdict"] == "retrain"
    assert "drift written to" in err
    code, _, err = run(capsys, "drift", model, old, "--fail-on", "watch", "--quiet")
    assert code == 0, err
    code, _, err = run(capsys, "drift", model, new, "--out", out, "--quiet")
    assert code == 2 and "already exists" in err  # no silent overwrite


def test_thresholds_change_the_verdict(periods, capsys):
    model, old, new = periods
    lenient = [
        f"{r}=5,never"
        for r in ("psi", "wasserstein", "js", "share_psi", "ood_share", "centre_shift")
    ]
    argv = ["drift", model, new, "--json", "--quiet"]
    code, out, err = run(capsys, *argv, *sum((["--threshold", t] for t in lenient), []))
    assert code == 0, err
    assert json.loads(out)["verdict"] == "stable"
    assert json.loads(out)["rules"]["psi"] == [5.0, None]


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--id", "customer_id"], "--reference"),
        (["--threshold", "psi"], "RULE=WATCH"),
        (["--threshold", "nope=1"], "no drift rule named nope"),
        (["--reference", "missing.parquet"], "missing.parquet"),
    ],
)
def test_bad_arguments_are_one_line(periods, capsys, extra, needle):
    model, _, new = periods
    code, _, err = run(capsys, "drift", model, new, *extra)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err


def test_bad_data_is_one_line(periods, capsys, tmp_path):
    model, old, _ = periods
    frame = pl.read_parquet(old)
    frame.drop("income").write_parquet(tmp_path / "no_income.parquet")
    frame[:0].write_parquet(tmp_path / "empty.parquet")
    dup = pl.concat([frame[:100], frame[:10]])
    dup.write_parquet(tmp_path / "dup.parquet")
    for data, needle in (("no_income.parquet", "income"), ("empty.parquet", "no rows")):
        code, _, err = run(capsys, "drift", model, tmp_path / data)
        assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    argv = ["drift", model, tmp_path / "dup.parquet", "--reference", old, "--id", "customer_id"]
    code, out, err = run(capsys, *argv, "--json", "--quiet")
    assert code == 0, err  # repeated ids are counted and reported, the first kept
    assert json.loads(out)["migration"]["duplicates"] == {"reference": 0, "new": 10}


def test_format_1_model_says_to_pass_the_reference(capsys):
    model, data = DATA / "format1_plain.json", DATA / "format1_customers.parquet"
    code, _, err = run(capsys, "drift", model, data)
    assert code == 2 and "no reference profile" in err and "--reference" in err
    code, out, err = run(capsys, "drift", model, data, "--reference", data, "--quiet")
    assert code == 0 and "verdict: stable" in out, err


def test_drift_never_imports_scikit_learn_or_pandas(periods):
    model, old, new = periods
    script = (
        "import sys; from fastseg.cli import main; "
        f"assert main(['drift', {str(model)!r}, {str(new)!r}, '--reference', {str(old)!r}, "
        "'--id', 'customer_id', '--quiet']) == 0; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'pandas'}))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
