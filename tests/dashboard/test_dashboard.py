"""``fastseg dashboard``: the aggregates it computes once, the Streamlit page over them
(``AppTest``: widgets, tables, filters), and the command end to end in a real browser."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import polars as pl
import pytest

from fastseg.cli import main
from fastseg.cluster.modelfile import load_engine
from fastseg.dashboard import server
from fastseg.dashboard.aggregates import (
    compute_aggregates,
    drift_result,
    load_aggregates,
    save_aggregates,
)
from fastseg.errors import DataError, FastsegError
from fastseg.workflow.report import pca_2d

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

FEATURES = ["age", "income", "monthly_charge", "tenure_months", "spending_score"]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def model(customers, tmp_path_factory):
    path = tmp_path_factory.mktemp("dashboard") / "model.json"
    args = ["fit", customers, "--k", "4", "--features", ",".join(FEATURES), "--model", path]
    assert main([*args, "--quiet"]) == 0
    return path


@pytest.fixture(scope="module")
def later(customers, tmp_path_factory):
    """A later period whose monthly charges rose: drift the verdict must see."""
    path = tmp_path_factory.mktemp("later") / "later.parquet"
    raised = pl.col("monthly_charge") + 40
    pl.read_parquet(customers).with_columns(raised).write_parquet(path)
    return path


@pytest.fixture(scope="module")
def plain(model, customers, tmp_path_factory):
    """Aggregates without a reference: (the dict, its folder)."""
    agg = compute_aggregates(model, customers, sample_rows=2000)
    return agg, save_aggregates(agg, tmp_path_factory.mktemp("plain") / "agg")


@pytest.fixture(scope="module")
def drifted(model, later, customers, tmp_path_factory):
    agg = compute_aggregates(model, later, reference=customers, sample_rows=2000)
    return agg, save_aggregates(agg, tmp_path_factory.mktemp("drifted") / "agg")


# ----- the aggregates ---------------------------------------------------------------------
def test_the_aggregates_agree_with_a_naive_pass_over_the_rows(model, customers, plain):
    agg, _ = plain
    frame = pl.read_parquet(customers).drop_nulls(FEATURES)
    engine = load_engine(model)
    scaled = engine.preprocessor_.transform(frame.select(FEATURES).to_numpy().astype(np.float32))
    squared = ((scaled[:, None, :] - engine.cluster_centers_[None]) ** 2).sum(axis=2)
    labels, nearest = squared.argmin(axis=1), squared.min(axis=1)
    metrics = agg["metrics"]
    assert agg["meta"]["rows"] == frame.height == metrics["size"].sum()
    assert metrics["size"].to_list() == np.bincount(labels, minlength=4).tolist()
    for s, inertia in zip(metrics["segment"], metrics["inertia_per_row"], strict=True):
        assert inertia == pytest.approx(nearest[labels == s].mean(), rel=1e-4)
    assert agg["segments"]["name"].to_list() == [
        f"{s}: {label}" for s, label in agg["profile"].select("segment", "label").iter_rows()
    ]
    z = agg["zscores"].select(FEATURES).to_numpy()
    assert np.array_equal(z, agg["profile"].select(f"{f}_z" for f in FEATURES).to_numpy())


def test_the_sample_is_bounded_and_uniform(model, customers, plain):
    agg, _ = plain
    sample = agg["sample"]
    assert sample.height == agg["meta"]["sample_rows"] == 2000
    assert sample.columns == ["segment", "pc1", "pc2", "distance", *FEATURES]
    shares = sample["segment"].value_counts().sort("segment")["count"] / sample.height
    assert np.allclose(shares.to_numpy(), agg["segments"]["share"].to_numpy(), atol=0.04)
    few = compute_aggregates(model, customers, sample_rows=50)
    assert few["sample"].height == 50


def test_the_pca_matches_numpys_on_the_standardised_rows():
    rows = np.random.default_rng(0).normal(size=(300, 4)) * [1, 5, 0.1, 2] + 7
    xy, explained = pca_2d(rows)
    standard = (rows - rows.mean(axis=0)) / rows.std(axis=0)
    values, vectors = np.linalg.eigh(np.cov(standard, rowvar=False, bias=True))
    expected = standard @ vectors[:, ::-1][:, :2]
    assert np.allclose(np.abs(xy), np.abs(expected))
    assert np.allclose(explained, values[::-1][:2] / values.sum())
    assert pca_2d(rows[:, :1])[0].shape == (300, 2)  # one feature: a strip


def test_saved_aggregates_read_back_the_same(plain, drifted, tmp_path):
    for agg, folder in (plain, drifted):
        back = load_aggregates(folder)
        assert back["meta"] == agg["meta"] and back["drift"] == agg["drift"]
        for name in ("segments", "profile", "zscores", "metrics", "sample"):
            assert back[name].equals(agg[name]), name
    assert drifted[0]["drift"]["verdict"] in ("watch", "retrain")
    assert drift_result(drifted[0]["drift"]).to_dict() == drifted[0]["drift"]
    assert sum(f.stat().st_size for f in drifted[1].iterdir()) < 1_000_000
    with pytest.raises(DataError, match="holds no dashboard data"):
        load_aggregates(tmp_path)


# ----- the page ---------------------------------------------------------------------------
APP = os.path.join(os.path.dirname(server.__file__), "app.py")


def page(folder, monkeypatch):
    monkeypatch.setenv("FASTSEG_DASHBOARD_DATA", str(folder))
    return AppTest.from_file(APP, default_timeout=60).run()


def text_of(at):
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info") for e in at.get(kind))


def test_the_page_shows_the_segments_and_no_drift_without_a_reference(plain, monkeypatch):
    agg, folder = plain
    at = page(folder, monkeypatch)
    assert not at.exception
    assert at.title[0].value == "Customer segments"
    names = agg["segments"]["name"].to_list()
    assert all(name in text_of(at) for name in names)
    assert at.multiselect(key="segments").value == [0, 1, 2, 3]
    headers = [h.value for h in at.header]
    assert "Segment sizes" in headers and "Segment profiles" in headers
    assert "Key metrics by segment" in headers and "Drift" not in headers
    profile = at.dataframe[0].value
    assert list(profile.columns) == ["measure", *names]
    assert "income mean (z)" in profile["measure"].to_list()
    assert [s.label for s in at.slider] == [f.replace("_", " ") for f in FEATURES]
    assert len(at.get("image")) == 1  # the heat map


def test_deselecting_a_segment_takes_it_out_of_every_table(plain, monkeypatch):
    agg, folder = plain
    at = page(folder, monkeypatch)
    gone = agg["segments"]["name"][0]
    at.multiselect(key="segments").set_value([1, 2, 3]).run()
    assert not at.exception
    assert gone not in text_of(at)
    assert gone not in at.dataframe[0].value.columns
    for table in at.dataframe[1:]:
        assert gone not in table.value["segment"].to_list()
        assert len(table.value) == 3
    at.multiselect(key="segments").set_value([]).run()
    assert not at.exception
    assert "No segment selected" in text_of(at)


def test_a_feature_range_narrows_the_sample_shown(plain, monkeypatch):
    agg, folder = plain
    at = page(folder, monkeypatch)
    full = at.dataframe[2].value["sampled customers matching"].sum()
    assert full == agg["sample"].height
    at.slider(key="range:income").set_value((20_000, 60_000)).run()
    assert not at.exception
    matching = at.dataframe[2].value
    inside = agg["sample"].filter(pl.col("income").is_between(20_000, 60_000))
    assert matching["sampled customers matching"].sum() == inside.height < full
    assert f"{inside.height:,} of the 2,000 sampled customers match the filters" in text_of(at)
    means = dict(zip(matching["segment"], matching["mean income"], strict=True))
    assert all(20_000 <= m <= 60_000 for m in means.values() if m == m)  # NaN: none there


def test_the_drift_section_shows_the_verdict_shares_and_psi(drifted, monkeypatch):
    agg, folder = drifted
    at = page(folder, monkeypatch)
    assert not at.exception
    assert "Drift" in [h.value for h in at.header]
    verdict = agg["drift"]["verdict"]
    assert f"Verdict: :{'orange' if verdict == 'watch' else 'red'}[{verdict}]" in text_of(at)
    subheaders = [s.value for s in at.subheader]
    assert "Segment shares before and after" in subheaders
    assert "How much each feature moved (PSI)" in subheaders
    by_feature = at.dataframe[-1].value
    psi = dict(zip(by_feature["feature"], by_feature["PSI"], strict=True))
    assert max(psi, key=psi.get) == "monthly charge"


def test_the_page_says_where_its_data_is_missing(monkeypatch, tmp_path):
    at = page(tmp_path, monkeypatch)
    assert not at.exception
    assert "No dashboard data found" in at.error[0].value


# ----- the command ------------------------------------------------------------------------
def test_bad_input_is_one_line_and_exit_2(customers, model, tmp_path, capsys):
    assert main(["dashboard", tmp_path / "none.json", customers]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fastseg: error: no such model file: '{tmp_path / 'none.json'}'"]
    assert main(["dashboard", model, customers, "--port", "0"]) == 2
    assert "--port" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["dashboard", model, customers, "--host", "0.0.0.0", "--port", port]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("fastseg: warning: --host 0.0.0.0 is not loopback")
    assert err[1] == f"fastseg: error: cannot listen on http://0.0.0.0:{port}: it is in use: " + (
        "choose another with --port"
    )


def test_a_missing_streamlit_names_the_extra(customers, model, monkeypatch, capsys):
    real = server.importlib.util.find_spec
    monkeypatch.setattr(
        server.importlib.util, "find_spec", lambda name: None if name == "streamlit" else real(name)
    )
    with pytest.raises(FastsegError, match=r"pip install 'fastseg\[dashboard\]'"):
        server.check_installed()
    assert main(["dashboard", model, customers]) == 2
    assert capsys.readouterr().err.strip() == (
        "fastseg: error: the dashboard needs streamlit: pip install 'fastseg[dashboard]'"
    )


def test_loopback_hosts():
    assert server.is_loopback("127.0.0.1") and server.is_loopback("::1")
    assert server.is_loopback("localhost")
    assert not server.is_loopback("0.0.0.0") and not server.is_loopback("example.org")
    assert server.url("::1", 8501) == "http://[::1]:8501"


# ----- end to end, in a browser -------------------------------------------------------------
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_url(process, out, timeout=180):
    """The address the command prints once the server answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in out.read_text().splitlines():
            if line.startswith("fastseg dashboard: http://"):
                return line.split(": ", 1)[1]
        assert process.poll() is None, f"the command ended with {process.returncode}"
        time.sleep(0.2)
    raise AssertionError("no address printed")


def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --disable-quic "
        "--no-first-run --disable-background-networking --disable-component-update "
        "--disable-sync --window-size=1400,3000"
    ).split():
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium'}")
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


@pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="the browser test needs Debian's chromium and chromium-driver packages",
)
def test_the_command_serves_the_page_to_a_real_browser(model, later, customers, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    temp = tmp_path / "temp"
    temp.mkdir()
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    port = free_port()
    args = [model, later, "--reference", customers, "--port", str(port), "--quiet"]
    with open(out, "w") as stdout, open(err, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "fastseg", "dashboard", *map(str, args)],
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, "TMPDIR": str(temp)},
        )
    try:
        url = wait_for_url(process, out)
        assert url == f"http://127.0.0.1:{port}"
        assert len(list(temp.glob("fastseg-dashboard-*"))) == 1
        driver = browser(tmp_path)
        try:
            driver.get(url)
            name = load_aggregates(next(temp.glob("fastseg-dashboard-*")))["segments"]["name"][0]

            def shown(d):
                text = d.find_element(By.TAG_NAME, "body").text
                return "Segment sizes" in text and name in text and "Verdict" in text

            WebDriverWait(driver, 60).until(shown)
            time.sleep(2)  # the charts draw after the text
            assert driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]') == []
            assert driver.save_screenshot(str(tmp_path / "dashboard.png"))
        finally:
            driver.quit()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    assert code == 0, err.read_text()
    assert list(temp.glob("fastseg-dashboard-*")) == []
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    shutil.rmtree(temp, ignore_errors=True)
