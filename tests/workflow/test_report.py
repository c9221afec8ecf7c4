"""fastseg report: one self-contained HTML file with readable plots and the tables."""

import base64
import re
import sys

import numpy as np
import polars as pl
import pytest
from sklearn.datasets import make_blobs

from fastseg.cli import main
from fastseg.cluster.lloyd import LloydEngine
from fastseg.errors import FastsegError
from fastseg.workflow.report import write_report


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    X, _ = make_blobs(3000, n_features=3, centers=4, random_state=0)
    frame = pl.DataFrame(X, schema=["spend", "visits", "tenure"]).with_columns(
        region=pl.Series(np.array(["n", "s"])[np.arange(3000) % 2])
    )
    path = tmp_path_factory.mktemp("report") / "d.parquet"
    frame.write_parquet(path)
    model = LloydEngine(4, random_state=0, scale="standard", missing="drop")
    model.fit(path, columns=["spend", "visits", "tenure"])
    return path, model


def test_report_embeds_every_plot_and_table(data, tmp_path):
    path, model = data
    out = tmp_path / "r.html"
    selection, table = write_report(model, path, out, ks=range(2, 7))
    page = out.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 5  # elbow and metrics, sizes, heat map, PCA scatter, distributions
    for image in images:
        assert base64.b64decode(image).startswith(b"\x89PNG")
    for heading in (
        "Choosing k",
        "Segment sizes",
        "What sets each segment apart",
        "PCA of a sample",
        "Feature distributions",
        "Segment profiles",
    ):
        assert heading in page
    assert selection.knee is not None and f"Recommended k = {selection.knee}" in page
    assert "<table>" in page and "region=n" in page and "spend (z)" in page
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched from elsewhere


def test_report_command_and_refusals(data, tmp_path, capsys):
    path, model = data
    model_path, out = tmp_path / "m.json", tmp_path / "r.html"
    model.save(model_path)
    args = ["report", str(model_path), str(path), "--out", str(out), "--k-range", "2:5"]
    assert main([*args, "--quiet"]) == 0 and out.stat().st_size > 10_000
    assert main([*args, "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_without_matplotlib_the_error_says_what_to_install(data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    path, model = data
    with pytest.raises(FastsegError, match=r"pip install 'fastseg\[report\]'"):
        write_report(model, path, tmp_path / "r.html", ks=range(2, 4))
    assert not (tmp_path / "r.html").exists()


def test_report_of_a_model_with_categorical_columns(data, tmp_path):
    path, _ = data
    model = LloydEngine(3, random_state=0, scale="standard", categorical=["region"])
    model.fit(path, columns=["spend", "visits", "tenure"])
    out = tmp_path / "r.html"
    _, table = write_report(model, path, out, ks=range(2, 4))
    assert "region=n" in table.columns and "spend_mean" in table.columns
    assert not any(c.startswith("region=n_") for c in table.columns)  # one-hot not profiled
    assert out.read_text().count("data:image/png;base64,") == 5


def test_report_with_one_numeric_feature(data, tmp_path):
    path, _ = data
    model = LloydEngine(2, random_state=0, scale="standard", categorical=["region"])
    model.fit(path, columns=["spend"])
    out = tmp_path / "r.html"
    write_report(model, path, out, ks=range(2, 4))
    assert out.read_text().count("data:image/png;base64,") == 5
