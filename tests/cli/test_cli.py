"""The fastseg command: the main jobs end to end, and every bad input as one line with exit 2."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import polars as pl
import pytest

import fastseg
from fastseg import load
from fastseg.cli import main
from fastseg.datasets import FEATURES
from fastseg.errors import DataError
from fastseg.workflow.labels import write_labels
from fastseg.workflow.segments import order_by_size

FEATURE_ARG = ",".join(FEATURES)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def fit_ok(capsys, *argv):
    """Run ``fastseg fit`` with argv and check it succeeded."""
    code, _, err = run(capsys, "fit", *argv)
    assert code == 0, err


def assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastseg: error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_fit_prints_segments_largest_first_and_writes_model_and_labels(customers, tmp_path, capsys):
    model_path, labels_path = tmp_path / "model.json", tmp_path / "labels.parquet"
    code, out, err = run(
        capsys,
        "fit",
        customers,
        "--k",
        5,
        "--features",
        FEATURE_ARG,
        "--model",
        model_path,
        "--labels",
        labels_path,
        "--keep",
        "customer_id",
        "--quiet",
    )
    assert code == 0, err
    assert "segment 0" in out and "segment 4" in out and "income" in out
    doc = json.loads(model_path.read_text())
    sizes = doc["metrics"]["cluster_sizes"]
    assert sizes == sorted(sizes, reverse=True)
    assert doc["preprocessor"]["settings"]["scale"] == "standard"
    labels = pl.read_parquet(labels_path)
    assert labels.columns == ["customer_id", "segment"]
    assert labels.height == 20_000
    # rows with a missing feature keep their place, with a null segment
    raw = pl.read_parquet(customers)
    has_null = raw.select(pl.any_horizontal(pl.col(FEATURES).is_null())).to_series()
    assert labels["segment"].is_null().to_list() == has_null.to_list()
    counts = np.bincount(labels["segment"].drop_nulls().to_numpy(), minlength=5)
    assert counts.tolist() == sizes


def test_fit_reports_dropped_rows(customers, capsys):
    code, _, err = run(capsys, "fit", customers, "--k", 3, "--features", "income,age")
    assert code == 0
    assert "dropped" in err and "missing values" in err


def test_predict_matches_fit_labels(customers, tmp_path, capsys):
    model_path, labels_path = tmp_path / "m.json", tmp_path / "fit.parquet"
    out_path = tmp_path / "pred.parquet"
    fit_ok(
        capsys,
        customers,
        "--k",
        4,
        "--features",
        "age,income,tenure_months",
        "--model",
        model_path,
        "--labels",
        labels_path,
        "--quiet",
    )
    code, _, err = run(capsys, "predict", model_path, customers, "--out", out_path, "--quiet")
    assert code == 0, err
    a, b = pl.read_parquet(labels_path), pl.read_parquet(out_path)
    assert a["segment"].to_list() == b["segment"].to_list()
    assert b.columns[-1] == "segment" and b.height == 20_000
    model = load(model_path)
    raw = pl.read_parquet(customers).drop_nulls(["age", "income", "tenure_months"])
    expect = model.predict(raw.select("age", "income", "tenure_months"))
    assert b["segment"].drop_nulls().to_list() == expect.tolist()


@pytest.mark.parametrize(
    "algorithm, estimator",
    [("lloyd", "KMeans"), ("minibatch", "MiniBatchKMeans")],
)
def test_cli_model_equals_the_estimators(customers, tmp_path, capsys, algorithm, estimator):
    """The CLI fits with the engines; the library's estimators must write the same file."""
    cli_path, lib_path = tmp_path / "cli.json", tmp_path / "lib.json"
    fit_ok(
        capsys,
        customers,
        "--k",
        3,
        "--features",
        FEATURE_ARG,
        "--algorithm",
        algorithm,
        "--seed",
        5,
        "--model",
        cli_path,
        "--quiet",
    )
    model = getattr(fastseg, estimator)(
        n_clusters=3,
        random_state=5,
        scale="standard",
        missing="drop",
        **({"max_iter": 100, "batch_size": 1024} if algorithm == "minibatch" else {}),
    )
    model.fit(customers, columns=list(FEATURES))
    order_by_size(model)
    model.save(lib_path)
    assert cli_path.read_text() == lib_path.read_text()


def test_cli_never_imports_scikit_learn_or_pandas(customers, tmp_path):
    """Importing scikit-learn costs about a second and 100 MB, pandas 0.3 s: the CLI's fit,
    labels and predict do without them (pandas counts only where it is installed)."""
    model, labels, out = tmp_path / "m.json", tmp_path / "l.parquet", tmp_path / "o.parquet"
    script = f"""
import sys
from fastseg.cli import main
assert main(["fit", {str(customers)!r}, "--k", "3", "--features", "age,income",
             "--model", {str(model)!r}, "--labels", {str(labels)!r}, "--quiet"]) == 0
assert main(["predict", {str(model)!r}, {str(customers)!r}, "--out", {str(out)!r},
             "--quiet"]) == 0
print(sorted({{m.split(".")[0] for m in sys.modules}} & {{"sklearn", "pandas"}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_minibatch_algorithm(customers, capsys):
    code, out, err = run(
        capsys,
        "fit",
        customers,
        "--k",
        4,
        "--features",
        FEATURE_ARG,
        "--algorithm",
        "minibatch",
        "--quiet",
    )
    assert code == 0, err
    assert "segment 3" in out


def test_spill_to_disk_gives_the_same_segments(customers, tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    spill = tmp_path / "spill"
    spill.mkdir()
    fit_ok(capsys, customers, "--k", 4, "--features", FEATURE_ARG, "--model", a, "--quiet")
    fit_ok(
        capsys,
        customers,
        "--k",
        4,
        "--features",
        FEATURE_ARG,
        "--model",
        b,
        "--memory-budget",
        "64KB",
        "--spill-dir",
        spill,
        "--quiet",
    )
    da, db = json.loads(a.read_text()), json.loads(b.read_text())
    assert da["cluster_centers"] == db["cluster_centers"]
    assert list(spill.iterdir()) == []  # the spill file went there and left with the process


def test_generate(tmp_path, capsys):
    out = tmp_path / "g.parquet"
    code, _, err = run(capsys, "generate", "--rows", 1000, "--out", out, "--seed", 2)
    assert code == 0, err
    frame = pl.read_parquet(out)
    assert frame.height == 1000 and "true_segment" in frame.columns


def test_demo(capsys):
    code, out, _ = run(capsys, "demo", "--rows", 20_000, "--quiet")
    assert code == 0
    assert "segment 5" in out and "adjusted Rand index" in out


@pytest.fixture()
def corrupt(tmp_path):
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(b"PAR1" + b"\x00garbage" * 50)
    return path


@pytest.fixture()
def with_nan(tmp_path):
    path = tmp_path / "nan.parquet"
    frame = pl.DataFrame({"a": [1.0, float("nan"), 3.0, 4.0], "b": [1.0, 2.0, 3.0, 4.0]})
    frame.write_parquet(path)
    return path


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["fit", "{tmp}/nope.parquet", "--k", "3", "--features", "age"], ["no such file"]),
        (["fit", "{tmp}/*.missing.parquet", "--k", "3", "--features", "age"], ["no files match"]),
        (
            ["fit", "{customers}", "--k", "3", "--features", "incme"],
            ["'incme' not found", "did you mean 'income'"],
        ),
        (
            ["fit", "{customers}", "--k", "3", "--features", "age,region"],
            ["must be numeric", "'region'"],
        ),
        (["fit", "{corrupt}", "--k", "3", "--features", "age"], ["cannot read"]),
        (["fit", "{nan}", "--k", "2", "--features", "a,b"], ["'a'", "NaN"]),
        (["fit", "{nan}", "--k", "3", "--features", "b"], []),  # 4 rows, k=3: fine
        (["fit", "{nan}", "--k", "9", "--features", "b"], ["n_samples=4", "n_clusters=9"]),
        (["fit", "{customers}", "--k", "0", "--features", "age"], ["at least 1"]),
        (
            ["fit", "{customers}", "--k", "3", "--features", "age", "--memory-budget", "lots"],
            ["not a size"],
        ),
        (
            ["fit", "{customers}", "--k", "3", "--features", "age", "--spill-dir", "{tmp}/no"],
            ["not a folder this user can write to"],
        ),
        (
            ["predict", "{tmp}/not_json.txt", "{customers}", "--out", "{tmp}/o.parquet"],
            ["not JSON"],
        ),
        (
            ["predict", "{tmp}/nope.json", "{customers}", "--out", "{tmp}/o.parquet"],
            ["no such model file"],
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(
    argv, needles, customers, corrupt, with_nan, tmp_path, capsys
):
    (tmp_path / "not_json.txt").write_text("hello")
    argv = [
        a.format(tmp=tmp_path, customers=customers, corrupt=corrupt, nan=with_nan) for a in argv
    ]
    code, _, err = run(capsys, *argv, "--quiet")
    if not needles:
        assert code == 0, err
        return
    assert_one_line_error(code, err, *needles)


def test_model_of_another_format_version(customers, tmp_path, capsys):
    model_path = tmp_path / "m.json"
    fit_ok(capsys, customers, "--k", 2, "--features", "age", "--model", model_path, "--quiet")
    doc = json.loads(model_path.read_text())
    doc["format_version"] = 99
    model_path.write_text(json.dumps(doc))
    code, _, err = run(capsys, "predict", model_path, customers, "--out", tmp_path / "o.parquet")
    assert_one_line_error(code, err, "format version 99")


def test_predict_with_features_missing_from_data(tmp_path, customers, capsys):
    model_path = tmp_path / "m.json"
    fit_ok(
        capsys, customers, "--k", 2, "--features", "age,income", "--model", model_path, "--quiet"
    )
    other = tmp_path / "other.parquet"
    pl.DataFrame({"age": [1.0, 2.0]}).write_parquet(other)
    code, _, err = run(capsys, "predict", model_path, other, "--out", tmp_path / "o.parquet")
    assert_one_line_error(code, err, "'income' not found")


def test_existing_output_is_refused_without_overwrite(customers, tmp_path, capsys):
    model_path = tmp_path / "m.json"
    model_path.write_text("precious")
    code, _, err = run(
        capsys, "fit", customers, "--k", 2, "--features", "age", "--model", model_path
    )
    assert_one_line_error(code, err, "already exists", "--overwrite")
    assert model_path.read_text() == "precious"
    code, _, _ = run(
        capsys,
        "fit",
        customers,
        "--k",
        2,
        "--features",
        "age",
        "--model",
        model_path,
        "--overwrite",
        "--quiet",
    )
    assert code == 0
    assert json.loads(model_path.read_text())["format"] == "fastseg-model"


def test_unknown_option_is_one_line(capsys):
    assert main(["fit", "x.parquet", "--k", "2"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--features" in err


@pytest.mark.parametrize("module", ["fastseg.cli", "fastseg"])
def test_console_entry_point(module):
    done = subprocess.run(
        [sys.executable, "-m", module, "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout == f"fastseg {fastseg.__version__}\n"


FIT_OPTIONS = [
    "--k", "--k-range", "--align-to", "--features", "--derive", "--log1p", "--missing", "--scale",
    "--categorical", "--category-weight", "--pca", "--algorithm", "--seed", "--n-init",
    "--max-iter", "--memory-budget", "--spill-dir", "--threads", "--model", "--labels", "--keep",
    "--quiet", "--overwrite",
]  # fmt: skip


def test_fit_help_shows_every_option_and_the_example(capsys):
    assert main(["fit", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: fastseg fit ")
    for option in FIT_OPTIONS:
        assert f"  {option} " in out, option
    assert (
        "example: fastseg fit customers.parquet --k 6 --features age,income,tenure_months "
        "--model model.json --labels labeled.parquet"
    ) in out


@pytest.mark.parametrize("command", ["fit", "select-k"])
def test_preprocessing_options_are_the_settings_fields(command, capsys):
    from dataclasses import fields

    from fastseg.preprocess.settings import PreprocessSettings

    assert main([command, "--help"]) == 0
    out = "".join(capsys.readouterr().out.split())  # help text wraps anywhere
    for field in fields(PreprocessSettings):
        assert "--" + field.name.replace("_", "-") in out
        assert "".join(field.metadata["help"].split()) in out
    assert "(defaultstandard)" in out and "(defaultdrop)" in out  # the CLI's own defaults


def test_algorithms_are_the_registry_s(capsys):
    from fastseg.cluster import registry

    code, _, err = run(capsys, "fit", "x.parquet", "--k", 2, "--features", "a", "--algorithm", "x")
    assert_one_line_error(code, err, "--algorithm", *registry.NAMES)


@pytest.mark.parametrize(
    "argv, needles",
    [
        ([], ["Missing command", "(see fastseg --help)"]),
        (["segment"], ["No such command 'segment'", "(see fastseg --help)"]),
        (["fit", "x.parquet", "--k", "2", "--features", "a", "--kk"], ["(see fastseg fit --help)"]),
        (["select-k", "x.parquet", "--features", "a"], ["--k-range", "(see fastseg select-k"]),
        (["report", "m.json", "x.parquet"], ["Missing option '--out'"]),
        (["fit", "x.parquet", "--k", "2", "--features", "a", "--pca", "0"], ["--pca"]),
    ],
)
def test_usage_errors_point_to_the_command_s_help(argv, needles, capsys):
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, *needles)


def test_help_and_usage_errors_do_not_load_the_library():
    """The commands import the library (Numba, Polars) in their bodies: --help and a typo
    answer at once."""
    script = """
import sys
from fastseg.cli import main
assert main(["--help"]) == 0 and main(["fit", "--help"]) == 0
assert main(["fit", "x.parquet", "--k", "two", "--features", "a"]) == 2
print(sorted({m.split(".")[0] for m in sys.modules} & {"numba", "polars", "pyarrow"}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_bug_is_a_traceback_and_a_request_to_report_it(customers, capsys, monkeypatch):
    from fastseg.workflow import fit as workflow

    def broken(*args, **kwargs):
        raise ValueError("not a user's mistake")

    monkeypatch.setattr(workflow, "fit_segments", broken)
    code, _, err = run(capsys, "fit", customers, "--k", 2, "--features", "age")
    assert code == 1
    assert "Traceback" in err and "ValueError: not a user's mistake" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("fastseg: internal error: this is a bug in fastseg") and "report" in last


@pytest.mark.parametrize(
    "parse, text, value",
    [
        ("parse_size", "512MB", 512 * 2**20),
        ("parse_size", "1.5G", int(1.5 * 2**30)),
        ("parse_size", "64KiB", 64 * 1024),
        ("parse_size", "100000", 100_000),
        ("parse_k_range", "2:5", [2, 3, 4, 5]),
        ("parse_k_range", "8,3,5,3", [3, 5, 8]),
        ("parse_columns", " age, income ,", ["age", "income"]),
        ("parse_columns", 'age,"tenure, months"," Age"', ["age", "tenure, months", " Age"]),
        ("parse_columns", '"say ""hi""",b', ['say "hi"', "b"]),
        ("parse_pca", "3", 3),
        ("parse_pca", "0.9", 0.9),
        ("parse_pca", "1.0", 1.0),  # a share: all the variance, not one component
        ("parse_k", "auto", "auto"),
        ("parse_seed", str(2**32 - 1), 2**32 - 1),
    ],
)
def test_value_parsers(parse, text, value):
    from fastseg.cli import options

    parsed = getattr(options, parse)(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    "parse, text, message",
    [
        ("parse_size", "1.2.3GB", "not a size"),
        ("parse_size", "0MB", "must be positive"),
        ("parse_k_range", "5:2", "from 2 to 1000"),
        ("parse_columns", ",", "at least one column"),
        ("parse_columns", 'a,"b', "in double quotes"),
        ("parse_pca", "2.5", "number of components"),
        ("parse_seed", "-1", "between 0 and"),
        ("positive_int", "1.5", "not a whole number"),
    ],
)
def test_value_parsers_refuse_with_a_message(parse, text, message):
    from fastseg.cli import options

    with pytest.raises(ValueError, match=message):
        getattr(options, parse)(text)


def _start_writing(out):
    """Start ``fastseg generate`` into ``out`` and return once it is writing the file."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fastseg.cli",
            "generate",
            "--rows",
            "50000000",
            "--out",
            str(out),
            "--overwrite",
            "--quiet",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    folder = str(out.parent)
    deadline = time.time() + 60
    while time.time() < deadline and not _has_file_open_in(proc.pid, folder):
        time.sleep(0.05)
    time.sleep(0.3)  # some row groups written
    assert proc.poll() is None, "the run ended before it could be interrupted"
    return proc


def _has_file_open_in(pid, folder):
    """Whether the process holds a file of ``folder`` open (named or not: O_TMPFILE)."""
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return False
    return any(link.startswith(folder + "/") for link in links)


def test_interrupted_run_exits_130_and_leaves_no_partial_file(tmp_path):
    out = tmp_path / "big.parquet"
    proc = _start_writing(out)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_killed_run_leaves_the_old_file_and_nothing_else(tmp_path):
    out = tmp_path / "big.parquet"
    out.write_text("the old file")
    proc = _start_writing(out)
    proc.send_signal(signal.SIGKILL)  # no handler runs: nothing can clean up
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert os.listdir(tmp_path) == ["big.parquet"]  # no temporary file, named or not
    assert out.read_text() == "the old file"


def test_labels_from_the_fit_line_up_with_the_input_or_are_refused(customers, tmp_path):
    features = ["age", "income", "tenure_months"]
    model = fastseg.KMeans(3, random_state=0, missing="drop").fit(customers, columns=features)
    out = tmp_path / "labels.parquet"
    write_labels(model, customers, out, fitted=True)
    segments = pl.read_parquet(out)["segment"]
    assert segments.drop_nulls().to_list() == model.labels_.tolist()
    raw = pl.read_parquet(customers)
    dropped = np.flatnonzero(raw.select(pl.any_horizontal(pl.col(features).is_null())).to_series())
    np.testing.assert_array_equal(model.dropped_rows_, dropped)
    np.testing.assert_array_equal(np.flatnonzero(segments.is_null().to_numpy()), dropped)
    out.unlink()
    model.labels_ = model.labels_[:-5]  # as if the input had changed since the fit
    with pytest.raises(DataError, match="changed between the fit"):
        write_labels(model, customers, out, fitted=True)
    assert not out.exists()


def test_segments_are_counted_and_renumbered_a_chunk_at_a_time(monkeypatch):
    from fastseg import config
    from fastseg.cluster.step import label_counts
    from fastseg.workflow import segments

    monkeypatch.setattr(config, "label_chunk_rows", 7)  # many chunks, a partial last one
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 2))
    model = fastseg.KMeans(4, random_state=0).fit(X)
    before = model.labels_.copy()
    np.testing.assert_array_equal(label_counts(before, 4), np.bincount(before, minlength=4))
    order = segments.order_by_size(model)
    np.testing.assert_array_equal(order[model.labels_], before)  # the same rows together
    sizes = label_counts(model.labels_, 4)
    assert (np.diff(sizes) <= 0).all()  # largest first
    np.testing.assert_array_equal(model.predict(X), model.labels_)


def test_labels_file_dictionary_encodes_segments_and_text_not_ids(customers, tmp_path, capsys):
    import pyarrow.parquet as pq

    out = tmp_path / "labels.parquet"
    fit_ok(capsys, customers, "--k", 3, "--features", "age,income", "--labels", out, "--quiet")
    meta = pq.ParquetFile(out).metadata.row_group(0)
    columns = [meta.column(i) for i in range(meta.num_columns)]
    encodings = {c.path_in_schema: c.encodings for c in columns}
    assert "RLE_DICTIONARY" in encodings["segment"] and "RLE_DICTIONARY" in encodings["region"]
    assert "RLE_DICTIONARY" not in encodings["customer_id"]
    assert "RLE_DICTIONARY" not in encodings["income"]


def test_quiet_silences_the_library_notes_too(tmp_path, capsys):
    path = tmp_path / "c.parquet"
    pl.DataFrame({"a": [1.0, 2.0, 3.0, 4.0] * 10, "b": [5.0] * 40}).write_parquet(path)
    code, _, err = run(capsys, "fit", path, "--k", "2", "--features", "a,b")
    assert code == 0 and "fastseg: note:" in err and "same in every row" in err
    code, _, err = run(capsys, "fit", path, "--k", "2", "--features", "a,b", "--quiet")
    assert code == 0 and err == ""


def test_a_closed_stdout_ends_the_printing_quietly_with_the_outputs_written(customers, tmp_path):
    model, labels = tmp_path / "m.json", tmp_path / "l.parquet"
    argv = [sys.executable, "-m", "fastseg", "fit", str(customers), "--k", "3",
            "--features", "age,income", "--model", str(model), "--labels", str(labels)]  # fmt: skip
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()  # as `| head` does, before anything is printed
    err = child.stderr.read().decode()
    assert child.wait() == 0, err
    assert "error" not in err and "Traceback" not in err
    assert model.exists() and labels.exists()


def test_columns_named_with_commas_or_spaces_can_be_chosen(tmp_path, capsys):
    path = tmp_path / "odd.parquet"
    pl.DataFrame(
        {" Age": [1.0, 2, 3, 4] * 5, "tenure, months": [1.0, 5, 2, 3] * 5, "x": [3.0, 1] * 10}
    ).write_parquet(path)
    code, _, err = run(capsys, "fit", path, "--k", 2, "--features", "tenure,x")
    assert_one_line_error(code, err, "did you mean '\"tenure, months\"'", '" Age"')
    code, out, err = run(
        capsys, "fit", path, "--k", 2, "--features", '" Age","tenure, months"', "--labels",
        tmp_path / "l.parquet", "--keep", '"tenure, months"',
    )  # fmt: skip
    assert code == 0, err
    assert "tenure, months" in out
    assert pl.read_parquet(tmp_path / "l.parquet").columns == ["tenure, months", "segment"]
