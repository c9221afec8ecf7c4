"""fastseg report --drift NEW: a later period's drift as the report's last section."""

import base64
import re
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
from matplotlib.colors import to_hex
from sklearn.datasets import make_blobs

from fastseg.cli import main
from fastseg.cluster.lloyd import LloydEngine
from fastseg.errors import DataError
from fastseg.workflow.drift import drift
from fastseg.workflow.report import segment_colours, write_report
from fastseg.workflow.report_drift import VERDICT_COLOURS, drift_plots, verdict_html

FEATURES = ["spend", "visits", "tenure"]
SHARES, PSI, MIGRATION = (
    "Segment shares before and after",
    "How much each feature moved (PSI)",
    "Who moved where",
)


@pytest.fixture(scope="module")
def periods(tmp_path_factory):
    """Two periods of 3,000 customers: 2,500 in both, spend 2 higher in the later one; 500
    lost, 500 new. Returns their paths and a model fitted on the earlier one."""
    X, _ = make_blobs(3000, n_features=3, centers=4, random_state=0)
    old = pl.DataFrame(X, schema=FEATURES).with_columns(
        customer_id=pl.int_range(3000),
        region=pl.Series(np.array(["n", "s"])[np.arange(3000) % 2]),
    )
    kept = old.slice(500).with_columns(pl.col("spend") + 2)
    joined = old.head(500).with_columns(pl.col("customer_id") + 3000)
    folder = tmp_path_factory.mktemp("periods")
    paths = folder / "q1.parquet", folder / "q2.parquet"
    old.write_parquet(paths[0])
    pl.concat([kept, joined]).write_parquet(paths[1])
    model = LloydEngine(4, random_state=0, scale="standard", categorical=["region"])
    model.fit(paths[0], columns=FEATURES)
    return *paths, model


def images(page):
    found = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in found)
    return len(found)


def test_a_later_period_adds_a_drift_section_after_the_report(periods, tmp_path):
    old, new, model = periods
    write_report(model, old, tmp_path / "plain.html", ks=range(2, 4))
    plain = (tmp_path / "plain.html").read_text()
    assert images(plain) == 5 and "Drift:" not in plain and SHARES not in plain

    write_report(model, old, tmp_path / "r.html", ks=range(2, 4), new=new)
    page = (tmp_path / "r.html").read_text()
    assert images(page) == 5 + 2  # segment shares, PSI by feature; no migration without ids
    assert f"<h2>Drift: {old} → {new}</h2>" in page
    assert page.index("Segment profiles") < page.index("Drift:")  # after the report's content
    assert f"<h3>{SHARES}</h3>" in page and f"<h3>{PSI}</h3>" in page
    assert MIGRATION not in page
    verdict = page[page.index("Verdict:") : page.index("</ul>", page.index("Verdict:"))]
    assert ">retrain</span>" in verdict
    assert "<li>spend: PSI" in verdict and "visits:" not in verdict  # only spend moved
    table = page[page.index("<th>W/std or JS</th>") :]
    assert re.search(r"<td class=\"text\">spend</td><td>\d+\.\d{3}</td>", table)
    assert "region (categorical)" in table and "(JS)" in table


def test_customers_matched_by_id_show_who_moved_where(periods, tmp_path):
    old, new, model = periods
    out = tmp_path / "r.html"
    write_report(model, old, out, ks=range(2, 4), new=new, id="customer_id")
    page = out.read_text()
    assert images(page) == 5 + 3 and f"<h3>{MIGRATION} (customers matched by id)</h3>" in page
    assert "The 2,500 customers found in both periods" in page
    assert (
        "New customers (only in the later period): 500; lost (only in the earlier one): 500" in page
    )


def test_the_drift_plots_keep_the_segments_colours_and_show_the_levels(periods):
    old, new, model = periods
    result = drift(model, new, reference=old, id="customer_id")
    colours = segment_colours(4)
    names = {s: f"{s}: segment" for s in range(4)}
    plots = drift_plots(pyplot(), result, colours, names)
    assert list(plots) == ["shares", "psi", "migration"]

    bars = plots["shares"].figure.axes[0]
    assert [to_hex(p.get_facecolor()) for p in bars.patches] == colours * 2  # before, after
    assert [t.get_text() for t in bars.get_yticklabels()] == list(names.values())

    psi = plots["psi"].figure.axes[0]
    verdicts = [VERDICT_COLOURS[f["verdict"]] for f in result.features]
    assert [to_hex(p.get_facecolor()) for p in psi.patches] == verdicts
    dashed = [line.get_xdata()[0] for line in psi.lines if line.get_linestyle() == "--"]
    assert dashed == list(result.rules.psi) == [0.1, 0.25]

    heat = plots["migration"].figure.axes[0]
    matrix = np.asarray(result.migration["matrix"])
    assert heat.images[0].get_array().shape == matrix.shape
    cells = [t.get_text() for t in heat.texts]
    assert cells == [f"{v:,}" for v in matrix.ravel()] and matrix.sum() == 2500
    assert "2,500 customers" in plots["migration"].caption


def test_the_same_customers_are_stable(periods, tmp_path):
    old, _, model = periods
    out = tmp_path / "r.html"
    write_report(model, old, out, ks=range(2, 4), new=old)
    page = out.read_text()
    assert ">stable</span>" in page and "every measure is below its watch level" in page


def test_the_verdict_escapes_its_reasons():
    result = SimpleNamespace(
        verdict="watch", reasons=["<b>&: PSI 0.2 >= 0.1"], rows={"reference": 10, "new": 20}
    )
    text = verdict_html(result)
    assert "<li>&lt;b&gt;&amp;: PSI 0.2 &gt;= 0.1</li>" in text and "20 rows" in text


def test_an_id_needs_a_later_period(periods, tmp_path):
    old, _, model = periods
    with pytest.raises(DataError, match="--drift NEW"):
        write_report(model, old, tmp_path / "r.html", id="customer_id")
    assert not (tmp_path / "r.html").exists()


def test_report_command_with_drift_and_its_refusals(periods, tmp_path, capsys):
    old, new, model = periods
    model_path, out = tmp_path / "m.json", tmp_path / "r.html"
    model.save(model_path)
    args = ["report", str(model_path), str(old), "--out", str(out), "--k-range", "2:3"]
    assert main([*args, "--drift", str(new), "--id", "customer_id"]) == 0
    assert "with the drift to the later period" in capsys.readouterr().err
    page = out.read_text()
    assert images(page) == 8 and f"Drift: {old} → {new}" in page and MIGRATION in page

    refusals = [
        ([*args, "--id", "customer_id", "--overwrite"], "--drift NEW"),
        ([*args[:4], str(new), *args[5:], "--drift", str(new), "--overwrite"], "is an input"),
    ]
    for argv, needle in refusals:
        assert main(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fastseg: error: ") and needle in lines[0]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    pyplot().close("all")


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
