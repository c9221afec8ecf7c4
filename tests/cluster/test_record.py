"""``model.assign``: one customer at a time, the same segments as ``predict``, the kernel
against its NumPy reference, the explanation, and one clear error per bad field."""

import math

import naive
import numpy as np
import polars as pl
import pytest

import fastseg
from fastseg.cluster import kernels
from fastseg.cluster.record import TOP_FEATURES
from fastseg.errors import DataError

FEATURES = ["age", "income", "tenure_months", "monthly_charge"]


@pytest.fixture(scope="module")
def frame(customers):
    return pl.read_parquet(customers)


@pytest.fixture(scope="module")
def model(customers):
    return fastseg.KMeans(
        5,
        random_state=0,
        scale="standard",
        missing="median",
        categorical=["region"],
        log1p=["income"],
    ).fit(customers, columns=[*FEATURES, "region"])


def _records(frame, n=2000, columns=(*FEATURES, "region")):
    return frame.select(columns).head(n).to_dicts()


@pytest.mark.parametrize("pca", [None, 2])
def test_kernel_matches_the_reference(pca):
    rng = np.random.default_rng(0)
    d, k, n = 6, 4, 300
    X = np.abs(rng.normal(size=(n, d))) * 10
    X[rng.random((n, d)) < 0.1] = np.nan  # missing values: filled
    params = np.zeros((6, d))
    params[0, [1, 3]] = 1.0  # log1p
    params[1], params[2] = rng.normal(size=d), rng.uniform(0.5, 2, d)
    params[4] = [0, 1, 2, 3, 3, 3]  # three features, then a one-hot group
    params[5] = rng.normal(size=d)
    if pca is None:
        components, p = np.empty((0, d)), d
    else:
        components, p = np.linalg.qr(rng.normal(size=(d, d)))[0][:pca], pca
        params[3] = rng.normal(size=d)
    centers = rng.normal(size=(k, p))
    scaled = centers if pca is None else centers @ components + params[3]
    out = np.empty((n, 4 + 2 * TOP_FEATURES))
    kernels.assign_records(X, params, components, centers, scaled, 4, out)
    log1p = params[0] > 0
    ref = naive.assign_records(
        X,
        log1p,
        params[1],
        params[2],
        params[3],
        components,
        centers,
        scaled,
        params[4].astype(int),
        params[5],
    )
    for i, (best, dist, runner, runner_dist, top, shares, _) in enumerate(ref):
        assert out[i, 0] == best and out[i, 2] == runner
        assert out[i, 1] == pytest.approx(dist) and out[i, 3] == pytest.approx(runner_dist)
        got = [int(g) for g in out[i, 4 : 4 + TOP_FEATURES] if g >= 0]
        assert got == top[:TOP_FEATURES]
        assert np.allclose(out[i, 4 + TOP_FEATURES : 4 + TOP_FEATURES + len(got)], shares[:3])


def test_same_segments_and_distances_as_predict(model, frame):
    records = _records(frame)
    answers = model.assign(records)
    batch = frame.head(2000)
    assert [a["segment"] for a in answers] == model.predict(batch).tolist()
    distances = model.transform(batch)
    for a, row in zip(answers, distances, strict=True):
        order = np.argsort(row, kind="stable")
        assert a["distance"] == pytest.approx(row[order[0]], rel=1e-5)
        assert a["runner_up"] == order[1]
        assert a["margin"] == pytest.approx(row[order[1]] - row[order[0]], rel=1e-4, abs=1e-5)
    one = model.assign(records[7])
    assert one == answers[7]  # a dict gives a dict, a list a list
    assert model.assign(batch.select([*FEATURES, "region"])) == answers  # and a frame


def test_explanation_names_the_features_that_pull(model, frame):
    answer = model.assign(_records(frame, 1)[0])
    parts = answer["contributions"]
    assert 1 <= len(parts) <= TOP_FEATURES
    shares = [p["share"] for p in parts]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1 + 1e-9
    for p in parts:
        assert p["feature"] in (*FEATURES, "region")
        assert p["feature"] in answer["explanation"]
    assert answer["explanation"].startswith(
        f"segment {answer['segment']} rather than {answer['runner_up']}"
    )
    centres = fastseg.workflow.segments.centers_in_original_units(model)
    names = list(model.feature_names_in_)
    numeric = [p for p in parts if p["feature"] in FEATURES]
    for p in numeric:
        j = names.index(p["feature"])
        assert p["segment_centre"] == pytest.approx(centres[answer["segment"], j])


def test_nulls_are_filled_as_the_fit_filled(model, frame):
    with_null = frame.filter(pl.col("income").is_null()).head(5)
    answers = model.assign(with_null.select([*FEATURES, "region"]).to_dicts())
    assert [a["segment"] for a in answers] == model.predict(with_null).tolist()


def test_unseen_level_and_null_category(model, frame):
    record = _records(frame, 1)[0]
    unseen = model.assign({**record, "region": "atlantis"})
    assert unseen["unseen"] == {"region": "atlantis"}
    frame_unseen = pl.DataFrame([{**record, "region": "atlantis"}])
    with pytest.warns(UserWarning, match="never saw"):
        assert unseen["segment"] == model.predict(frame_unseen)[0]
    assert "unseen" not in model.assign({**record, "region": None})


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r.pop("age"), "missing field 'age'"),
        (lambda r: r.update(plan="gold"), "unknown field(s) 'plan'"),
        (lambda r: r.update(age="forty"), "field 'age' must be a number, not 'forty'"),
        (lambda r: r.update(age=True), "field 'age' must be a number"),
        (lambda r: r.update(age=math.nan), "field 'age' is nan"),
        (lambda r: r.update(income=math.inf), "field 'income' is inf"),
        (lambda r: r.update(income=-3), "log1p needs values above -1"),
        (lambda r: r.update(region=3), "field 'region' must be one of the kind"),
        (lambda r: r.pop("region"), "missing field 'region'"),
    ],
)
def test_bad_fields_are_one_clear_error(model, frame, change, message):
    record = _records(frame, 1)[0]
    change(record)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        model.assign(record)


def test_null_without_filling_and_not_a_record(frame, customers):
    plain = fastseg.KMeans(3, random_state=0, missing="drop").fit(customers, columns=FEATURES)
    record = frame.select(FEATURES).drop_nulls().row(0, named=True)
    with pytest.raises(DataError, match="field 'age' is null, and the model fills no"):
        plain.assign({**record, "age": None})
    with pytest.raises(DataError, match="a customer is an object"):
        plain.assign([[1, 2, 3, 4]])


def test_pca_derived_features_and_arrays(customers, frame, blobs32):
    derived = fastseg.KMeans(
        4,
        random_state=0,
        scale="standard",
        missing="median",
        pca=2,
        derive=["income_per_month = income / (tenure_months + 1)"],
    ).fit(customers, columns=["age", "income", "tenure_months", "income_per_month"])
    rows = frame.select(["age", "income", "tenure_months"]).drop_nulls().head(500)
    answers = derived.assign(rows.to_dicts())
    assert [a["segment"] for a in answers] == derived.predict(rows).tolist()
    on_array = fastseg.KMeans(4, random_state=0).fit(blobs32)
    answers = on_array.assign([{"x0": a, "x1": b, "x2": c} for a, b, c in blobs32[:300]])
    assert [a["segment"] for a in answers] == on_array.predict(blobs32[:300]).tolist()


def test_a_refitted_model_answers_with_its_new_centres(blobs32):
    model = fastseg.KMeans(4, random_state=0).fit(blobs32)
    record = {"x0": 0.0, "x1": 0.0, "x2": 0.0}
    model.assign(record)
    model.fit(blobs32 * 10)
    assert model.assign(record)["segment"] == model.predict(np.zeros((1, 3), np.float32))[0]
    one = fastseg.KMeans(1).fit(blobs32)
    answer = one.assign(record)
    assert answer["runner_up"] is None and answer["explanation"] == "the model has one segment"
