"""Every command meets bad input with one readable line and exit code 2, never a traceback."""

import os

import polars as pl
import pytest

from fastseg.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A good file, a model fitted on it, and one file per kind of bad input."""
    folder = tmp_path_factory.mktemp("bad")
    good = pl.DataFrame(
        {
            "a": [float(i % 7) for i in range(60)],
            "b": [float((i * 3) % 11) for i in range(60)],
            "name": [f"n{i % 3}" for i in range(60)],
        }
    )
    good.write_parquet(folder / "good.parquet")
    pl.DataFrame({"a": [], "b": []}, schema={"a": pl.Float64, "b": pl.Float64}).write_parquet(
        folder / "empty.parquet"
    )
    pl.DataFrame(
        {"a": [None, None, None], "b": [1.0, 2.0, 3.0]}, schema={"a": pl.Float64, "b": pl.Float64}
    ).write_parquet(folder / "all_null.parquet")
    pl.DataFrame({"a": [1.0, float("inf"), 2.0, 3.0], "b": [1.0, 2.0, 3.0, 4.0]}).write_parquet(
        folder / "inf.parquet"
    )
    pl.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0]}).write_parquet(
        folder / "three.parquet"
    )
    (folder / "mixed").mkdir()
    good.head(30).write_parquet(folder / "mixed" / "p1.parquet")
    good.tail(30).with_columns(pl.col("a").cast(pl.String)).write_parquet(
        folder / "mixed" / "p2.parquet"
    )
    (folder / "corrupt.parquet").write_bytes(b"PAR1" + b"\x00garbage" * 50)
    (folder / "cut.parquet").write_bytes((folder / "good.parquet").read_bytes()[:-40])
    (folder / "not_json.json").write_text("hello")
    model = folder / "model.json"
    assert (
        main(
            [
                "fit",
                str(folder / "good.parquet"),
                "--k",
                "2",
                "--features",
                "a,b",
                "--model",
                str(model),
                "--quiet",
            ]
        )
        == 0
    )
    pl.DataFrame({"a": [1.0, 2.0]}).write_parquet(folder / "only_a.parquet")
    pl.DataFrame({"a": [1.0, 1e39, 2.0, 3.0], "b": [1.0, 2.0, 3.0, 4.0]}).write_parquet(
        folder / "huge.parquet"
    )
    (folder / "four").mkdir()  # one bad file among several: named
    for name in ("p1", "p2", "p3"):
        good.write_parquet(folder / "four" / f"{name}.parquet")
    (folder / "four" / "p4.parquet").write_bytes(b"PAR1" + b"\x00garbage" * 50)
    (folder / "lacking").mkdir()
    good.write_parquet(folder / "lacking" / "p1.parquet")
    good.drop("b").write_parquet(folder / "lacking" / "p2.parquet")
    return folder


DATA_PROBLEMS = [  # (data file or pattern, features, k range, what the message must say)
    ("nope.parquet", "a,b", "2:3", ["no such file"]),
    ("*.missing.parquet", "a,b", "2:3", ["no files match"]),
    ("good.parquet", "a,bb", "2:3", ["'bb' not found", "did you mean 'b'"]),
    ("good.parquet", "a,name", "2:3", ["must be numeric", "'name'", "name it in --categorical"]),
    ("empty.parquet", "a,b", "2:3", ["has no rows"]),
    ("all_null.parquet", "a,b", "2:3", ["no rows left"]),
    ("inf.parquet", "a,b", "2:3", ["'a'", "NaN or infinite"]),
    ("three.parquet", "a,b", "2:5", ["n_samples=3", "n_clusters=5"]),
    ("mixed/*.parquet", "a,b", "2:3", ["'a'", "must be numeric"]),  # string in one file
    ("huge.parquet", "a,b", "2:3", ["'a'", "1e+39", "beyond the float32 range"]),
    ("lacking", "a,b", "2:3", ["p2.parquet' has no column 'b'"]),
    ("four", "a,b", "2:3", ["cannot read", "p4.parquet"]),
    ("corrupt.parquet", "a,b", "2:3", ["cannot read"]),
    ("cut.parquet", "a,b", "2:3", ["cannot read"]),
]


def one_line_error(argv, capsys, needles):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("fastseg: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


@pytest.mark.parametrize("data, features, k_range, needles", DATA_PROBLEMS)
def test_select_k(files, capsys, data, features, k_range, needles):
    argv = ["select-k", files / data, "--k-range", k_range, "--features", features, "--quiet"]
    one_line_error(argv, capsys, needles)


@pytest.mark.parametrize("data, _features, _k, needles", DATA_PROBLEMS[:3] + DATA_PROBLEMS[8:])
def test_profile_and_report(files, capsys, tmp_path, data, _features, _k, needles):
    model = files / "model.json"
    if "not found" in needles[0]:
        data, needles = "only_a.parquet", ["'b' not found"]
    one_line_error(["profile", model, files / data, "--quiet"], capsys, needles)
    out = tmp_path / "r.html"
    argv = ["report", model, files / data, "--out", out, "--k-range", "2:3", "--quiet"]
    one_line_error(argv, capsys, needles)
    assert not out.exists()


@pytest.mark.parametrize("command", ["profile", "report", "predict"])
@pytest.mark.parametrize(
    "model, needles",
    [("not_json.json", ["not JSON"]), ("nope.json", ["no such model file"])],
)
def test_bad_model_files(files, capsys, tmp_path, command, model, needles):
    argv = [command, files / model, files / "good.parquet", "--quiet"]
    if command != "profile":
        argv += ["--out", tmp_path / "out"]
    one_line_error(argv, capsys, needles)


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["select-k", "{f}/good.parquet", "--k-range", "0:3", "--features", "a"], ["from 2"]),
        (["select-k", "{f}/good.parquet", "--k-range", "2:5000", "--features", "a"], ["to 1000"]),
        (["fit", "{f}/good.parquet", "--k", "-1", "--features", "a"], ["at least 1"]),
        (["fit", "{f}/good.parquet", "--k", "many", "--features", "a"], ["not a whole number"]),
        (
            ["fit", "{f}/good.parquet", "--k", "2", "--features", "a", "--pca", "-2"],
            ["number of components"],
        ),
        (
            ["report", "{f}/model.json", "{f}/good.parquet", "--out", "{f}/nofolder/r.html"],
            ["does not exist"],
        ),
        (
            ["profile", "{f}/model.json", "{f}/good.parquet", "--out", "{f}/model.json"],
            ["already exists"],
        ),
        (
            ["fit", "{f}/good.parquet", "--k", "2", "--features", "a", "--derive", "x = a +"],
            ["cannot read the derived feature"],
        ),
    ],
)
def test_bad_arguments(files, capsys, argv, needles):
    one_line_error([a.format(f=files) for a in argv] + ["--quiet"], capsys, needles)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(files, capsys, tmp_path):
    path = tmp_path / "locked.parquet"
    path.write_bytes((files / "good.parquet").read_bytes())
    path.chmod(0)
    one_line_error(["fit", path, "--k", "2", "--features", "a"], capsys, ["cannot read"])


def test_a_constant_column_is_a_note_not_an_error(tmp_path, capsys):
    import numpy as np

    import fastseg
    from fastseg.errors import DataWarning

    frame = pl.DataFrame({"a": [float(i) for i in range(50)], "b": [3.0] * 50})
    path = tmp_path / "const.parquet"
    frame.write_parquet(path)
    assert main(["fit", str(path), "--k", "3", "--features", "a,b"]) == 0
    err = capsys.readouterr().err
    assert "fastseg: note: b is the same in every row" in err and "Traceback" not in err
    with pytest.warns(DataWarning, match="b is the same in every row"):
        model = fastseg.KMeans(3, random_state=0, scale="standard").fit(frame)
    assert np.isfinite(model.cluster_centers_).all()


@pytest.mark.parametrize(
    "data, needles",
    [
        ("nope.parquet", ["no such file"]),
        ("*.missing.parquet", ["no files match"]),
        ("only_a.parquet", ["'b' not found"]),
        ("inf.parquet", ["NaN or infinite"]),
        ("huge.parquet", ["'a'", "beyond the float32 range"]),
        ("lacking", ["p2.parquet' has no column 'b'"]),
        ("four", ["cannot read", "p4.parquet"]),
        ("corrupt.parquet", ["cannot read"]),
        ("cut.parquet", ["cannot read"]),
        ("empty.parquet", ["no rows"]),
    ],
)
def test_predict(files, capsys, tmp_path, data, needles):
    out = tmp_path / "o.parquet"
    argv = ["predict", files / "model.json", files / data, "--out", out, "--quiet"]
    one_line_error(argv, capsys, needles)
    assert not out.exists()


@pytest.mark.parametrize(
    "extra, needles",
    [
        (["--category-weight", "0"], ["--category-weight", "above 0"]),
        (["--category-weight", "nan"], ["--category-weight", "above 0"]),
        (["--category-weight", "-1"], ["--category-weight", "above 0"]),
        (["--keep", "a,a", "--labels", "L.parquet"], ["--keep names a more than once"]),
    ],
)
def test_fit_options_out_of_range(files, capsys, tmp_path, extra, needles):
    extra = [str(tmp_path / e) if e.endswith(".parquet") else e for e in extra]
    argv = ["fit", files / "good.parquet", "--k", "2", "--features", "a,b", *extra]
    one_line_error(argv, capsys, needles)
    assert not (tmp_path / "L.parquet").exists()
