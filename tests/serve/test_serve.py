"""``fastseg serve`` as a client meets it: a real server on loopback, started as a subprocess,
spoken to over HTTP. Answers must equal ``model.assign`` in-process; every kind of bad input
must be a 4xx with a JSON error naming the field, after which the server still answers."""

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import polars as pl
import pytest

import fastseg
from fastseg.cluster.modelfile import load_engine
from fastseg.serve.listen import is_loopback

FIELDS = ["age", "income", "monthly_charge", "tenure_months", "region"]
TOKEN = "s3cret-token"
MAX_BODY = 64 * 1024
STARTUP_SECONDS = 60


@pytest.fixture(scope="module")
def models(tmp_path_factory, customers):
    """Two small models of the same fields (4 and 5 segments) and 40 customers to send."""
    folder = tmp_path_factory.mktemp("serve")
    paths = {}
    for k in (4, 5):
        paths[k] = folder / f"model{k}.json"
        model = fastseg.KMeans(
            k, random_state=0, scale="standard", missing="median", categorical=["region"]
        )
        model.fit(customers, columns=FIELDS).save(paths[k])
    records = pl.read_parquet(customers).select(FIELDS).drop_nulls().head(40).to_dicts()
    return paths, records


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_command(model, *args):
    return [sys.executable, "-m", "fastseg", "serve", str(model), *map(str, args)]


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "FASTSEG_TOKEN"}
    return {**env, **extra}


class Server:
    """``fastseg serve`` in a subprocess, its stdout and stderr in files."""

    def __init__(self, folder, model, *args):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout, self.stderr = folder / "stdout.txt", folder / "stderr.txt"
        with open(self.stdout, "w") as out, open(self.stderr, "w") as err:
            self.process = subprocess.Popen(
                serve_command(model, "--port", self.port, *args),
                stdout=out,
                stderr=err,
                env=clean_env(),
            )
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def wait(self):
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server ended: {self.stderr.read_text()}")
            try:
                if self.client.get("/healthz").status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("the server did not answer /healthz in time")

    def log(self):
        return self.stderr.read_text()

    def stop(self):
        """SIGTERM; the exit status."""
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    """Model 4 behind a token, with a small body limit."""
    paths, _ = models
    folder = tmp_path_factory.mktemp("server")
    running = Server(folder, paths[4], "--token", TOKEN, "--max-body", "64KB")
    try:
        yield running.wait()
    finally:
        running.stop()


def post(server, body, token=TOKEN, **headers):
    """POST /segment with ``body`` (bytes as they are; anything else as JSON)."""
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    headers.setdefault("Content-Type", "application/json")
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return server.client.post("/segment", content=content, headers=headers)


def assert_still_serving(server, record):
    assert server.client.get("/healthz").json() == {"status": "ok"}
    answer = post(server, record)
    assert answer.status_code == 200 and "segment" in answer.json()


# ----- answers ------------------------------------------------------------------------------
def test_one_customer_is_answered_as_the_model_answers_it(server, models):
    paths, records = models
    engine = load_engine(paths[4])
    for record in records[:5] + [{**records[0], "region": "mars"}]:
        answer = post(server, record)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == engine.assign(record)
    assert post(server, {**records[0], "region": "mars"}).json()["unseen"] == {"region": "mars"}


def test_an_array_is_answered_in_order(server, models):
    paths, records = models
    answer = post(server, records)
    assert answer.status_code == 200
    found = answer.json()
    assert found == load_engine(paths[4]).assign(records)
    for item in found:
        assert {"segment", "distance", "runner_up", "margin", "explanation"} <= set(item)
    assert post(server, []).json() == []


def test_a_null_is_filled_as_the_fit_filled_it(server, models):
    paths, records = models
    record = {**records[0], "income": None}
    assert post(server, record).json() == load_engine(paths[4]).assign(record)


def test_the_model_lists_fields_and_labelled_segments(server):
    answer = server.client.get("/model", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    doc = answer.json()
    assert doc["k"] == 4 and doc["estimator"] == "KMeans" and doc["file"] == "model4.json"
    assert doc["fields"] == FIELDS
    kinds = {f["name"]: f["kind"] for f in doc["features"]}
    assert kinds == {**dict.fromkeys(FIELDS[:-1], "number"), "region": "category"}
    assert [s["segment"] for s in doc["segments"]] == [0, 1, 2, 3]
    assert sum(s["share"] for s in doc["segments"]) == pytest.approx(1.0)
    for s in doc["segments"]:
        assert isinstance(s["label"], str) and s["label"]
        assert set(FIELDS[:-1]) <= set(s["centre"]) and "region=north" in s["centre"]
    words = " ".join(s["label"] for s in doc["segments"])
    assert "high" in words and "low" in words  # worded as fastseg profile words them


# ----- the token --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"],
    ids=["none", "wrong", "not-bearer", "longer", "empty"],
)
def test_without_the_token_requests_get_401(server, models, header):
    _, records = models
    headers = {} if header is None else {"Authorization": header}
    for answer in (
        post(server, records[0], token=None, **headers),
        server.client.get("/model", headers=headers),
    ):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in answer.json()["error"]
    assert server.client.get("/healthz").status_code == 200  # (open: it tells nothing)


# ----- bad input ----------------------------------------------------------------------------
def bad_inputs(record):
    without_income = {k: v for k, v in record.items() if k != "income"}
    return {
        "missing field": (without_income, 422, "missing field 'income'"),
        "extra field": ({**record, "shoe_size": 42}, 422, "'shoe_size'"),
        "text for a number": ({**record, "income": "lots"}, 422, "field 'income' must be a number"),
        "boolean for a number": ({**record, "age": True}, 422, "field 'age' must be a number"),
        "NaN literal": (b'{"age": NaN}', 400, "JSON has no NaN"),
        "Infinity literal": (b'[{"age": -Infinity}]', 400, "JSON has no NaN"),
        "number beyond a float": (b'{"age": 1e400}', 422, "out of range"),
        "whole number beyond a float": ({**record, "income": 10**400}, 422, "field 'income'"),
        "malformed JSON": (b'{"age": 30,', 400, "not valid JSON"),
        "empty body": (b"", 400, "not valid JSON"),
        "nested too deeply": (b"[" * 5000 + b"]" * 5000, 400, "not valid JSON"),
        "non-object item": ([record, 7, record], 422, "item 1: a customer is an object"),
        "bad item": ([record, record, {**record, "income": "x"}], 422, "item 2: field 'income'"),
        "object as a level": ({**record, "region": {"a": 1}}, 422, "field 'region'"),
        "array as a number": ({**record, "age": [1]}, 422, "field 'age'"),
        "a bare number": (b"42", 422, "one customer (a JSON object)"),
        "body over --max-body": ([record] * 1000, 413, "over the limit of 65,536 bytes"),
    }


@pytest.mark.parametrize("case", list(bad_inputs({})))
def test_bad_input_is_a_4xx_naming_the_problem_and_the_server_goes_on(server, models, case):
    _, records = models
    body, status, words = bad_inputs(records[0])[case]
    answer = post(server, body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert words in answer.json()["error"]
    if case in ("bad item", "non-object item"):
        assert answer.json()["item"] == int(words.split()[1].rstrip(":"))
    assert_still_serving(server, records[0])


def test_other_content_types_methods_and_paths_get_json_errors(server, models):
    _, records = models
    form = post(server, records[0], **{"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415 and "application/json" in form.json()["error"]
    assert server.client.get("/segment").status_code == 405
    missing = server.client.get("/nothing")
    assert missing.status_code == 404 and "error" in missing.json()
    big = post(server, b" " * (MAX_BODY + 1), **{"Content-Length": str(MAX_BODY + 1)})
    assert big.status_code == 413
    assert_still_serving(server, records[0])


# ----- the model file watched -----------------------------------------------------------------
def replace(path, content):
    """Write ``content`` beside ``path``, then move it over ``path`` in one step."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def wait_for(condition, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_new_model_file_is_swapped_in_and_a_broken_one_is_refused(models, tmp_path):
    paths, records = models
    served = tmp_path / "served.json"
    served.write_bytes(paths[4].read_bytes())
    running = Server(tmp_path, served, "--no-auth").wait()
    try:
        assert "WARNING: no authentication" in running.log()
        assert running.client.get("/model").json()["k"] == 4  # no token needed
        replace(served, paths[5].read_bytes())
        assert wait_for(lambda: running.client.get("/model").json()["k"] == 5)
        many = records * 25  # over 64 KB: answered in a worker thread
        assert post(running, many, token=None).json() == load_engine(paths[5]).assign(many)
        assert "loaded the new model file (5 segments)" in running.log()
        replace(served, b'{"format": "fastseg-model", "cut off')
        assert wait_for(lambda: "not loaded" in running.log())
        refused = [line for line in running.log().splitlines() if "not loaded" in line]
        assert len(refused) == 1 and "not a fastseg model file" in refused[0]
        assert running.client.get("/model").json()["k"] == 5
        assert post(running, records[0], token=None).json()["segment"] in range(5)
    finally:
        status = running.stop()
    assert status == 0 and "fastseg serve: stopped" in running.log()


# ----- the command line -----------------------------------------------------------------------
def run_cli(*args, **env):
    return subprocess.run(
        [sys.executable, "-m", "fastseg", "serve", *map(str, args)],
        capture_output=True,
        text=True,
        env=clean_env(**env),
        timeout=60,
    )


def one_line_error(result):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastseg: error: ")
    return lines[0]


def test_another_address_without_a_token_is_refused(models):
    paths, _ = models
    line = one_line_error(run_cli(paths[4], "--host", "0.0.0.0"))
    assert "not loopback" in line and "--token" in line and "--no-auth" in line


def test_a_token_from_the_environment_and_no_auth_contradict(models):
    paths, _ = models
    line = one_line_error(run_cli(paths[4], "--no-auth", FASTSEG_TOKEN="x"))
    assert "FASTSEG_TOKEN" in line


def test_a_missing_model_file_is_one_line(tmp_path):
    line = one_line_error(run_cli(tmp_path / "none.json"))
    assert "no such model file" in line


def test_a_port_in_use_is_one_line(models):
    paths, _ = models
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        line = one_line_error(run_cli(paths[4], "--port", taken.getsockname()[1]))
    assert "in use" in line


@pytest.mark.parametrize(
    "host, loopback",
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False), ("a.b", False)],
)
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


def test_without_the_serve_extra_the_error_says_what_to_install(models, monkeypatch, capsys):
    import importlib.util

    from fastseg.cli import main

    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else found(name)
    )
    paths, _ = models
    assert main(["serve", str(paths[4])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fastseg: error: fastseg serve needs uvicorn: pip install 'fastseg[serve]'"]
