"""The reference profile a fit keeps: its figures against NumPy on the fitted data, exact
counts beyond the sample, the model file, segment renumbering, invariance to batch size."""

import json

import numpy as np
import polars as pl
import pytest

import fastseg
from fastseg import config
from fastseg.cluster.modelfile import load_engine
from fastseg.errors import ModelFileError
from fastseg.monitor import measures
from fastseg.monitor.reference import DISTANCE_LEVELS, PeriodSample, ReferenceProfile
from fastseg.preprocess.settings import PreprocessSettings
from fastseg.workflow.fit import fit_segments


def _frame(n, seed=0):
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 10, n)
    spend = rng.gamma(2.0, 3.0, n).round()  # whole numbers: ties at the decile edges
    region = rng.choice(["east", "north", "west"], n, p=[0.5, 0.3, 0.2]).astype(object)
    region[rng.random(n) < 0.05] = None
    spend_col = pl.Series(spend).scatter(np.flatnonzero(rng.random(n) < 0.02), None)
    return pl.DataFrame({"income": income, "spend": spend_col, "region": region.tolist()})


def test_numeric_figures_are_those_of_the_fitted_data():
    frame = _frame(20_000)
    model = fastseg.KMeans(3, random_state=0, missing="drop").fit(
        frame, columns=["income", "spend"]
    )
    ref = model.reference_
    assert ref.rows == 20_000 and ref.sample_rows == 20_000  # below the sample size: all rows
    for name in ("income", "spend"):
        values = frame[name].cast(pl.Float32).to_numpy().astype(np.float64)
        present = values[~np.isnan(values)]
        f = ref.feature(name)
        assert f.missing_share == pytest.approx(1 - present.size / 20_000)
        assert np.array_equal(f.edges, np.unique(np.quantile(present, measures.DECILES)))
        assert f.shares[-1] == pytest.approx(f.missing_share)  # the missing bin comes last
        share_of_present = f.shares[:-1] / (1 - f.missing_share)
        assert np.allclose(share_of_present, measures.bin_counts(f.edges, present) / present.size)
        assert np.allclose(f.quantiles, np.quantile(present, measures.quantile_levels()))
        assert (f.low, f.high) == (present.min(), present.max())
        assert f.mean == pytest.approx(present.mean()) and f.std == pytest.approx(present.std())
    assert ref.feature("spend").edges.size < 9  # ties merged


def test_segments_and_distances_are_those_of_the_fit(blobs32):
    model = fastseg.KMeans(4, random_state=0).fit(blobs32)
    ref = model.reference_
    assert ref.segment_rows.tolist() == np.bincount(model.labels_, minlength=4).tolist()
    distance = np.sqrt(((blobs32 - model.cluster_centers_[model.labels_]) ** 2).sum(axis=1))
    for s in range(4):
        mine = distance[model.labels_ == s].astype(np.float64)
        assert np.allclose(ref.distance_quantiles[s], np.quantile(mine, DISTANCE_LEVELS), rtol=1e-5)
        assert ref.mean_sq_distance[s] == pytest.approx(np.mean(mine**2), rel=1e-5)


def test_segment_figures_are_numpys_to_the_bit():
    """Each segment's mean squared distance and distance quantiles, taken from one stable sort
    by segment, are NumPy's of ``distance[segment == s]`` exactly: empty segments, segments of
    one or two rows, ties, rows of no segment."""
    rng = np.random.default_rng(7)
    segment = rng.choice(6, 20_000, p=[0.5, 0.3, 0.2, 0.0, 0.0, 0.0]).astype(np.int32)
    segment[rng.random(segment.size) < 0.05] = -1
    segment[[5, 9, 11]] = [3, 4, 4]  # one row in segment 3, two in 4, none in 5 and 6
    distance = np.round(np.abs(rng.standard_normal(segment.size)) * 3, 2)
    distance[segment < 0] = np.nan
    sample = PeriodSample(20_000, {}, {}, {}, segment, distance, {}, {}, {})
    profile = ReferenceProfile.from_sample(sample, 7)
    for s in range(7):
        mine = distance[segment == s]
        if mine.size == 0:
            assert profile.mean_sq_distance[s] == 0 and not profile.distance_quantiles[s].any()
            continue
        assert profile.mean_sq_distance[s] == float(np.mean(mine**2))
        np.testing.assert_array_equal(
            profile.distance_quantiles[s], np.quantile(mine, DISTANCE_LEVELS)
        )


@pytest.mark.parametrize("missing", ["drop", "median"])
def test_segments_from_the_fit_labels_equal_a_search(missing, monkeypatch):
    """The profile takes each tapped row's segment from the fit's labels (dropped rows
    counted out), and equals the one a nearest-centre search gives: a sample of part of the
    rows, with nulls dropped or filled."""
    from fastseg.monitor import reference

    monkeypatch.setattr(config, "reference_rows", 3_000)
    frame = _frame(20_000, seed=4)
    fit = fastseg.KMeans(4, random_state=0, missing=missing, scale="standard")
    model = fit.fit(frame, columns=["income", "spend"])
    searched = fastseg.KMeans(4, random_state=0, missing=missing, scale="standard")
    monkeypatch.setattr(
        reference, "_fitted_assignment", lambda m, t, r: reference.assign_rows(m, r)
    )
    searched.fit(frame, columns=["income", "spend"])
    assert json.dumps(model.reference_.to_dict()) == json.dumps(searched.reference_.to_dict())
    assert model.reference_.sample_rows == 3_000


def test_categorical_shares_count_levels_and_missing_values():
    frame = _frame(10_000, seed=1)
    model = fastseg.KMeans(3, random_state=0, categorical=["region"], missing="mean").fit(
        frame, columns=["income", "spend", "region"]
    )
    f = model.reference_.feature("region")
    assert f.levels == ["east", "north", "west"]
    counts = frame["region"].value_counts()
    for i, level in enumerate(f.levels):
        expected = counts.filter(pl.col("region") == level)["count"].item() / 10_000
        assert f.shares[i] == pytest.approx(expected)
    assert f.shares[-2] == 0.0  # no unseen level in the reference
    assert f.shares[-1] == pytest.approx(frame["region"].null_count() / 10_000)


def test_counts_stay_exact_beyond_the_sample(monkeypatch):
    monkeypatch.setattr(config, "reference_rows", 1_000)
    frame = _frame(30_000, seed=2)
    model = fastseg.KMeans(3, random_state=0, missing="mean").fit(
        frame, columns=["income", "spend"], sample_weight=None
    )
    ref = model.reference_
    assert (ref.rows, ref.sample_rows) == (30_000, 1_000)
    spend = frame["spend"].cast(pl.Float32)
    f = ref.feature("spend")
    assert f.missing_share == spend.null_count() / 30_000  # exact, not the sample's
    assert (f.low, f.high) == (spend.min(), spend.max())
    assert ref.segment_rows.sum() == 30_000  # the fit's own counts


def test_profile_is_saved_and_read_back(tmp_path, blobs_frame):
    model = fastseg.KMeans(3, random_state=0, scale="standard").fit(blobs_frame)
    path = tmp_path / "m.json"
    model.save(path)
    loaded = fastseg.load(path)
    assert loaded.reference_.to_dict() == model.reference_.to_dict()
    assert load_engine(path).reference_.to_dict() == model.reference_.to_dict()
    doc = json.loads(path.read_text())
    doc["reference"]["segments"] = doc["reference"]["segments"][:2]
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match="reference profile has 2 segments"):
        fastseg.load(path)


def test_segments_renumbered_largest_first_carry_their_profile(customers, tmp_path):
    features = ["age", "income", "tenure_months"]
    settings = PreprocessSettings(missing="drop", scale="standard")
    result = fit_segments(
        customers, 4, features=features, settings=settings, model=tmp_path / "m.json"
    )
    doc = json.loads((tmp_path / "m.json").read_text())
    rows = [s["rows"] for s in doc["reference"]["segments"]]
    assert rows == doc["metrics"]["cluster_sizes"] == sorted(rows, reverse=True)
    # each segment's distances are those of the rows now labelled with its number
    batches = list(result.model.iter_assign(customers))
    segment, squared = (
        np.concatenate(part) for part in zip(*(b.assigned() for b in batches), strict=True)
    )
    assert np.bincount(segment, minlength=4).tolist() == rows
    ref = result.model.reference_
    for s in range(4):
        median = np.quantile(np.sqrt(squared[segment == s]), 0.5)
        assert ref.distance_quantiles[s][0] == pytest.approx(median, rel=1e-4)


def test_same_profile_for_any_batch_size_and_threads(customers):
    features = ["age", "income", "monthly_charge"]
    docs = [
        fastseg.KMeans(
            3, random_state=0, batch_size=b, n_threads=t, missing="median", scale="robust"
        )
        .fit(customers, columns=features)
        .to_dict()["reference"]
        for b, t in ((4096, 1), (None, 2))
    ]
    assert json.dumps(docs[0]) == json.dumps(docs[1])


def test_partial_fit_drops_the_profile(blobs32):
    model = fastseg.MiniBatchKMeans(3, random_state=0).fit(blobs32)
    assert model.reference_ is not None
    model.partial_fit(blobs32[:100])
    assert not hasattr(model, "reference_")
    assert "reference" not in model.to_dict()
