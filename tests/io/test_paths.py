"""Which files an input names (each once; no ``_``/``.`` files; a path before a glob), and
outputs that never clobber: not a file another run published meanwhile, never an input."""

import os
import warnings

import polars as pl
import pytest

from fastseg.cli import main
from fastseg.errors import DataWarning, FastsegError
from fastseg.io.output import atomic_output
from fastseg.io.paths import resolve_parquet_paths


@pytest.fixture()
def folder(tmp_path):
    frame = pl.DataFrame({"a": [float(i % 5) for i in range(40)], "b": [1.0, 2.0] * 20})
    frame.write_parquet(tmp_path / "g.parquet")
    return tmp_path


def resolved(paths):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        files = resolve_parquet_paths(paths)
    return files, [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


def test_a_file_named_twice_is_read_once_and_said_so(folder):
    g = str(folder / "g.parquet")
    files, notes = resolved([g, g])
    assert files == [g] and len(notes) == 1 and "read once" in notes[0]
    files, _ = resolved([str(folder / "*.parquet"), g])  # a glob and one of its files
    assert files == [g]
    (folder / "loop").mkdir()
    os.symlink(folder, folder / "loop" / "back")  # a symlink loop under **
    files, _ = resolved(str(folder / "**" / "*.parquet"))
    assert [os.path.realpath(f) for f in files] == [os.path.realpath(g)]


def test_files_and_folders_named_with_underscore_or_dot_are_not_data(folder):
    data = folder / "spark"
    for part in ("_temporary", ".hidden", "year=2024"):
        (data / part).mkdir(parents=True)
        pl.read_parquet(folder / "g.parquet").write_parquet(data / part / "p.parquet")
    (data / "_SUCCESS").touch()
    (data / ".p.parquet.crc").touch()
    assert resolved(str(data))[0] == [str(data / "year=2024" / "p.parquet")]
    assert resolved(str(data / "*"))[0] == [str(data / "year=2024" / "p.parquet")]


def test_a_glob_matching_a_folder_reads_its_parts_and_a_real_path_is_taken_literally(folder):
    (folder / "feb.parquet").mkdir()
    pl.read_parquet(folder / "g.parquet").write_parquet(folder / "feb.parquet" / "part-0.parquet")
    assert str(folder / "feb.parquet" / "part-0.parquet") in resolved(str(folder / "f*.parquet"))[0]
    os.link(folder / "g.parquet", folder / "cust[1].parquet")
    os.link(folder / "g.parquet", folder / "cust1.parquet")
    assert resolved(str(folder / "cust[1].parquet"))[0] == [str(folder / "cust[1].parquet")]


def test_an_output_another_run_published_meanwhile_is_never_clobbered(tmp_path):
    out = tmp_path / "m.json"
    with pytest.raises(FastsegError, match="already exists"):
        with atomic_output(out, overwrite=False) as tmp:
            with open(tmp, "w") as f:
                f.write("mine")
            out.write_text("the other run's")  # it published first
    assert out.read_text() == "the other run's"
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # nothing else left


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--labels", "{g}", "--keep", "a", "--overwrite"], "is an input of this run"),
        (["--model", "{g}", "--overwrite"], "is an input of this run"),
        (["--labels", "{d}/s.out", "--model", "{d}/s.out"], "cannot both be written"),
    ],
)
def test_an_output_is_never_an_input_nor_two_outputs_one_path(folder, capsys, extra, needle):
    g = folder / "g.parquet"
    before = g.read_bytes()
    extra = [e.format(g=g, d=folder) for e in extra]
    assert main(["fit", str(g), "--k", "2", "--features", "a,b", "--quiet", *extra]) == 2
    assert needle in capsys.readouterr().err
    assert g.read_bytes() == before and not (folder / "s.out").exists()


def test_predict_may_not_write_over_its_model(folder, capsys):
    g, model = folder / "g.parquet", folder / "m.json"
    assert (
        main(["fit", str(g), "--k", "2", "--features", "a,b", "--model", str(model), "--quiet"])
        == 0
    )
    before = model.read_bytes()
    code = main(["predict", str(model), str(g), "--out", str(model), "--overwrite", "--quiet"])
    assert code == 2 and "is an input" in capsys.readouterr().err
    assert model.read_bytes() == before


def test_a_labels_file_fastseg_wrote_into_the_input_folder_is_not_read_as_input(folder):
    import fastseg

    data = folder / "data"
    data.mkdir()
    os.link(folder / "g.parquet", data / "g.parquet")
    argv = ["fit", str(data), "--k", "2", "--features", "a,b", "--quiet"]
    assert main([*argv, "--labels", str(data / "labels.parquet")]) == 0
    files, notes = resolved(str(data))
    assert files == [str(data / "g.parquet")]
    assert "skipped 1 labels file" in notes[0] and "labels.parquet" in notes[0]
    assert resolved(str(data / "*.parquet"))[0] == [str(data / "g.parquet")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        again = fastseg.KMeans(2, random_state=0).fit(str(data), columns=["a", "b"])
    assert again.labels_.shape[0] == 40  # not 80
    named = str(data / "labels.parquet")
    assert resolved(named)[0] == [named]  # named on its own: read
    pl.read_parquet(data / "labels.parquet").write_parquet(data / "copy.parquet")
    assert len(resolved(str(data))[0]) == 2  # a segment column, but not written by fastseg
