"""fastseg report: one self-contained HTML file with readable plots and the tables."""

import base64
import datetime
import re
import sys

import numpy as np
import polars as pl
import pytest
from matplotlib.colors import to_hex
from sklearn.datasets import make_blobs

from fastseg import __version__
from fastseg.cli import main
from fastseg.cluster.lloyd import LloydEngine
from fastseg.cluster.modelfile import load_engine
from fastseg.datasets import write_customers
from fastseg.errors import FastsegError
from fastseg.workflow import report
from fastseg.workflow.profile import segment_stats
from fastseg.workflow.report import (
    KChoice,
    build_plots,
    choose_k_story,
    k_range_text,
    segment_colours,
    segment_names,
    write_report,
)
from fastseg.workflow.select_k import KScore, Selection

FEATURES = ["age", "income", "monthly_charge", "tenure_months"]


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


@pytest.fixture(scope="module")
def customers(tmp_path_factory):
    """3,000 generated customers (incomes in the 100,000s, a few missing) and their number
    of rows with a missing feature."""
    path = tmp_path_factory.mktemp("customers") / "customers.parquet"
    write_customers(path, 3000, seed=3, null_fraction=0.01)
    frame = pl.read_parquet(path, columns=FEATURES)
    return path, frame.height - frame.drop_nulls().height


@pytest.fixture(scope="module")
def auto_model(customers, tmp_path_factory):
    """A model fitted by ``fastseg fit --k auto --k-range 2:6``: it keeps its selection."""
    path, _ = customers
    model_path = tmp_path_factory.mktemp("auto") / "m.json"
    argv = ["fit", str(path), "--k", "auto", "--k-range", "2:6", "--model", str(model_path)]
    assert main([*argv, "--features", ",".join(FEATURES), "--quiet"]) == 0
    return model_path


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def no_select_k(*args, **kwargs):
    raise AssertionError("select-k ran again")


def plots_of(model, path, ks=range(2, 5)):
    """The report's figures for ``model`` on ``path``, and the profile table."""
    stats = segment_stats(model, path)
    table = stats.table()
    choice = choose_k_story(model, path, ks, columns=stats.features)
    return build_plots(model, stats, table, choice), table


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
    assert [s.k for s in selection.scores] == [2, 3, 4, 5, 6]
    assert "k = 4, given when the model was fitted" in page
    assert "was given when it was fitted, not chosen from these curves" in page
    knee = selection.knee
    assert (
        f"the knee of the inertia curve {'is at' if knee == 4 else 'suggests'} k = {knee}" in page
    )
    assert "<table>" in page and "region=n" in page and "spend mean (z)" in page
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched from elsewhere


def test_a_model_fitted_with_k_auto_shows_its_own_choice_of_k(
    customers, auto_model, tmp_path, monkeypatch
):
    path, _ = customers
    model = load_engine(auto_model)
    kept = model.k_selection_
    assert kept["k_range"] == [2, 3, 4, 5, 6] and kept["decided_by"] == "knee"
    monkeypatch.setattr(report, "select_k", no_select_k)  # its scores are in the model
    out = tmp_path / "r.html"
    selection, _ = write_report(model, path, out, ks=range(2, 13))  # ks: for a given k only
    page = out.read_text()
    k = model.n_clusters
    assert f"k = {k}, chosen by the knee of the inertia curve over k = 2..6" in page
    assert "the scores it was chosen from" in page and "given" not in page
    assert [s.k for s in selection.scores] == kept["k_range"]
    assert [s.inertia for s in selection.scores] == [s["inertia"] for s in kept["scores"]]
    assert selection.knee == k
    assert re.search(rf'<tr class="this"><td>{k}</td>', page)  # its row of scores, marked

    plots, _ = plots_of(model, path)
    legend = [t.get_text() for t in plots["k"].figure.legends[0].get_texts()]
    assert f"this model: k = {k} (chosen by the knee)" in legend
    assert f"knee of the inertia curve: k = {k}" in legend  # drawn apart though the same k


def test_the_command_says_its_k_range_is_not_used_for_a_k_auto_model(
    customers, auto_model, tmp_path, monkeypatch, capsys
):
    path, _ = customers
    monkeypatch.setattr(report, "select_k", no_select_k)
    out = tmp_path / "r.html"
    argv = ["report", str(auto_model), str(path), "--out", str(out), "--k-range", "2:3"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "--k-range is not used" in err and "(k = 2..6)" in err
    assert "the model's own scores of k = 2..6" in err


def test_the_header_says_what_was_segmented_and_how(customers, tmp_path):
    path, n_missing = customers
    assert n_missing > 0
    model = LloydEngine(3, random_state=0, scale="standard", missing="drop", log1p=["income"])
    model.fit(path, columns=FEATURES)
    out = tmp_path / "r.html"
    write_report(model, path, out, ks=range(2, 5))
    page = out.read_text()
    header = page[page.index('<table class="facts">') : page.index("</table>")]
    facts = dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]*)</td></tr>", header))
    assert facts["Data"] == str(path)
    assert (
        facts["Rows"] == f"{3000 - n_missing:,} used; {n_missing:,} with a missing feature left out"
    )
    assert facts["Features"] == ", ".join(FEATURES)
    for step in ("log(1 + x) of income", "rows with a missing feature dropped", "standardised"):
        assert step in facts["Preprocessing"]
    assert facts["Segments"] == "k = 3, given when the model was fitted"
    assert facts["Date"].startswith(datetime.date.today().isoformat())
    assert facts["fastseg version"] == __version__


def test_segments_are_named_by_their_labels_in_every_plot(customers, auto_model):
    path, _ = customers
    model = load_engine(auto_model)
    plots, table = plots_of(model, path)
    names = list(segment_names(table).values())
    assert all(label in names[i] for i, label in enumerate(table["label"]))

    def flat(texts):
        return [t.get_text().replace(" ·\n", " · ") for t in texts]

    sizes = plots["sizes"].figure.axes[0]
    assert flat(sizes.get_yticklabels()) == names
    heatmap_rows = plots["heatmap"].figure.axes[0]  # the colour strip, labelled
    assert flat(heatmap_rows.get_yticklabels()) == names
    assert flat(plots["scatter"].figure.legends[0].get_texts()) == names
    boxes = plots["distributions"].figure.axes[0]
    assert flat(boxes.get_yticklabels()) == names


def test_each_segment_has_one_colour_in_every_plot(customers, auto_model):
    path, _ = customers
    model = load_engine(auto_model)
    plots, table = plots_of(model, path)
    segments = list(table["segment"])
    colours = [segment_colours(model.n_clusters)[s] for s in segments]
    assert len(set(colours)) == len(segments)

    bars = plots["sizes"].figure.axes[0].patches
    assert [to_hex(bar.get_facecolor()) for bar in bars] == colours
    strip = plots["heatmap"].figure.axes[0].images[0].get_array()
    assert [to_hex(row[0]) for row in strip] == colours
    scatter = plots["scatter"].figure.axes[0].collections
    assert [to_hex(points.get_facecolor()[0]) for points in scatter] == colours
    box_axes = [ax for ax in plots["distributions"].figure.axes if ax.get_title(loc="left")]
    assert [ax.get_title(loc="left") for ax in box_axes] == [f.replace("_", " ") for f in FEATURES]
    for ax in box_axes:
        assert [to_hex(box.get_facecolor()) for box in ax.patches] == colours


def test_how_k_was_chosen_in_words():
    scores = [KScore(k, 10.0 / k, 0.5, 1.0, 100.0, 5, 0.0) for k in (2, 3, 4, 5, 7)]
    selection = Selection(scores, 4, {"silhouette": 3, "Davies-Bouldin": 2}, 1000)
    knee = KChoice(4, selection, "knee")
    assert knee.summary() == "k = 4, chosen by the knee of the inertia curve over k = 2, 3, 4, 5, 7"
    assert "not computed again" in knee.verdict() and "Davies–Bouldin 2" in knee.verdict()
    assert (
        KChoice(3, selection, "silhouette")
        .summary()
        .startswith("k = 3, chosen by the best silhouette over")
    )
    given = KChoice(6, selection, None)
    assert given.summary() == "k = 6, given when the model was fitted"
    assert "the knee of the inertia curve suggests k = 4" in given.verdict()
    assert given.verdict().endswith("(k = 6 is outside the range scored).")
    assert "is at k = 4 too" in KChoice(4, selection, None).verdict()
    assert k_range_text(range(2, 11)) == "2..10" and k_range_text([3, 5, 8]) == "3, 5, 8"


@pytest.mark.parametrize("k", [3, 10, 20, 25])
def test_segment_colours_are_distinct(k):
    assert len(set(segment_colours(k))) == k


def test_axes_read_as_plain_numbers(customers, auto_model):
    """No '1e6' offset or exponent at an axis end, and thousands separated: 300,000."""
    path, _ = customers
    plots, _ = plots_of(load_engine(auto_model), path)
    numbers = []
    for plot in plots.values():
        plot.figure.canvas.draw()
        for ax in plot.figure.axes:
            for axis in (ax.xaxis, ax.yaxis):
                assert axis.get_offset_text().get_text() == ""
                numbers += [t.get_text() for t in axis.get_ticklabels()]
    assert any("," in text for text in numbers)  # incomes and inertia in the 10,000s
    for text in numbers:
        assert not re.search(r"\d{4}|e[+-]?\d", text), text


def test_box_plots_say_they_leave_outliers_out(customers, auto_model):
    path, _ = customers
    plots, _ = plots_of(load_engine(auto_model), path)
    distributions = plots["distributions"]
    assert "not drawn" in distributions.caption and "% for income" in distributions.caption
    for ax in distributions.figure.axes:
        assert not any(line.get_marker() not in ("None", "", None) for line in ax.lines)


def test_report_command_and_refusals(data, tmp_path, capsys):
    path, model = data
    model_path, out = tmp_path / "m.json", tmp_path / "r.html"
    model.save(model_path)
    args = ["report", str(model_path), str(path), "--out", str(out), "--k-range", "2:5"]
    assert main(args) == 0 and out.stat().st_size > 10_000
    assert "(k = 2..5 scored)" in capsys.readouterr().err
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
    page = out.read_text()
    assert page.count("data:image/png;base64,") == 5
    assert "Features</th><td>spend, visits, tenure; categorical: region<" in page
    assert "region one-hot encoded (weight 0.707)" in page


def test_report_with_one_numeric_feature(data, tmp_path):
    path, _ = data
    model = LloydEngine(2, random_state=0, scale="standard", categorical=["region"])
    model.fit(path, columns=["spend"])
    out = tmp_path / "r.html"
    write_report(model, path, out, ks=range(2, 4))
    assert out.read_text().count("data:image/png;base64,") == 5


def test_report_shows_the_segments_as_rules(data, tmp_path):
    """The rules ``fastseg explain`` finds, each segment's, with their agreement."""
    from fastseg.workflow.explain import explain

    path, model = data
    out = tmp_path / "r.html"
    write_report(model, path, out, ks=range(2, 4))
    page = out.read_text()
    found = explain(model, path, seed=0)
    assert "The segments as rules" in page
    assert page.index("Segment profiles") < page.index("The segments as rules")
    for segment, text, share in found.rules():
        assert f"segment {segment}</td><td>{text}</td><td>{share:.0%}</td>" in page.replace(
            "&gt;", ">"
        )
    assert f"agree with the model for {found.agreement:.0%}" in page


def test_report_compares_the_other_algorithms_when_asked(data, tmp_path):
    path, model = data
    out = tmp_path / "r.html"
    write_report(model, path, out, ks=range(2, 4))
    assert "Other algorithms" not in out.read_text()
    write_report(model, path, out, ks=range(2, 4), compare=True, overwrite=True)
    page = out.read_text()
    section = page[page.index("<h2>Other algorithms</h2>") :]
    for name in ("kmeans", "gmm", "ward"):
        assert f"<td>{name}</td><td>" in section
    assert "Recommended: <b>" in section
