"""Drift with known answers: a shifted feature, two halves of one table, a new category, a
segment that doubles, customers far from every centre, the migration by id; and bad input."""

import json

import numpy as np
import polars as pl
import pytest
from scipy import stats

import fastseg
from fastseg.errors import DataError
from fastseg.monitor import measures
from fastseg.workflow.drift import drift

N = 60_000


def _table(n, seed, shift=0.0, ids=None, region_p=(0.5, 0.3, 0.2)):
    """Three blobs in (income, spend) plus a region; ``shift`` moves income by that many of
    its reference stds... of the blob structure's overall std (``INCOME_STD``)."""
    rng = np.random.default_rng(seed)
    blob = rng.integers(0, 3, n)
    income = np.array([30.0, 60.0, 90.0])[blob] + rng.normal(0, 8, n) + shift * INCOME_STD
    spend = np.array([5.0, 20.0, 10.0])[blob] + rng.normal(0, 2, n)
    region = rng.choice(["east", "north", "west"], n, p=region_p)
    return pl.DataFrame(
        {
            "customer_id": np.arange(n) if ids is None else ids,
            "income": income,
            "spend": spend,
            "region": region,
        }
    )


INCOME_STD = float(np.sqrt(8.0**2 + np.var([30.0, 60.0, 90.0])))


@pytest.fixture(scope="module")
def fitted():
    reference = _table(N, seed=0)
    model = fastseg.KMeans(3, random_state=0, scale="standard", categorical=["region"]).fit(
        reference, columns=["income", "spend", "region"]
    )
    return model, reference


def _feature(result, name):
    return next(f for f in result.features if f["feature"] == name)


def test_a_feature_shifted_half_a_std_has_the_psi_of_theory(fitted):
    model, _ = fitted
    result = drift(model, _table(N, seed=1, shift=0.5))
    income = _feature(result, "income")
    # the reference's decile bins of income; the new data: the same mixture, moved
    edges = model.reference_.feature("income").edges
    move = 0.5 * INCOME_STD
    cdf = lambda x: np.mean([stats.norm.cdf(x, m, 8.0) for m in (30, 60, 90)], axis=0)  # noqa: E731
    bounds = np.concatenate([[-np.inf], edges, [np.inf]])
    expected = np.diff(cdf(bounds))
    actual = np.diff(cdf(bounds - move))
    assert income["psi"] == pytest.approx(measures.psi(expected, actual), abs=0.01)
    assert income["wasserstein_std"] == pytest.approx(0.5, abs=0.03)
    assert income["verdict"] != "stable" and _feature(result, "spend")["verdict"] == "stable"
    assert result.verdict != "stable"
    assert any(r.startswith("income: PSI") for r in result.reasons)


def test_two_random_halves_of_one_table_are_stable_everywhere():
    table = _table(2 * N, seed=2)
    shuffled = table.sample(fraction=1.0, shuffle=True, seed=3)
    first, second = shuffled[:N], shuffled[N:]
    model = fastseg.KMeans(3, random_state=0, scale="standard", categorical=["region"]).fit(
        first, columns=["income", "spend", "region"]
    )
    result = drift(model, second)
    assert result.verdict == "stable", result.reasons
    assert all(f["verdict"] == "stable" for f in result.features)
    assert all(s["verdict"] == "stable" for s in result.segments)
    assert result.summary["segment_shares"]["psi"] < 0.01
    assert result.summary["out_of_distribution"]["share"] == pytest.approx(0.01, abs=0.004)
    for f in result.features:
        assert f["psi"] < 0.01
    # the reference data itself gives the same story as the model's profile
    again = drift(model, second, reference=first)
    assert again.verdict == "stable"
    assert again.rows["reference_source"] == "the reference data"


def test_a_new_category_is_counted_as_unseen(fitted):
    model, _ = fitted
    new = _table(N, seed=4).with_columns(
        pl.when(pl.int_range(pl.len()) % 10 == 0)
        .then(pl.lit("south"))
        .otherwise("region")
        .alias("region")
    )
    with _no_warning():
        result = drift(model, new)
    region = _feature(result, "region")
    assert region["unseen_share"] == pytest.approx(0.1, abs=0.001)
    assert region["js"] > 0.05
    assert region["psi"] > 0.25 and region["verdict"] == "retrain"
    assert result.verdict == "retrain"


class _no_warning:
    """Drift reports unseen levels itself: no UnseenCategoryWarning besides."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings(record=True)
        self.caught = self._catch.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)
        assert not [w for w in self.caught if "never saw" in str(w.message)]


def test_a_segment_that_doubles(fitted):
    model, reference = fitted
    labels = model.predict(reference)
    doubled = int(np.argmin(np.bincount(labels)))
    new = pl.concat([reference, reference.filter(pl.Series(labels == doubled))])
    result = drift(model, new)
    before = model.reference_.segment_shares
    after = before.copy()
    after[doubled] *= 2
    after /= after.sum()
    shares = result.summary["segment_shares"]
    assert shares["psi"] == pytest.approx(measures.psi(before, after), rel=1e-6)
    segment = result.segments[doubled]
    assert segment["new_share"] == pytest.approx(after[doubled])
    assert segment["psi"] == max(s["psi"] for s in result.segments)
    expected = "stable" if shares["psi"] < 0.1 else ("watch" if shares["psi"] < 0.25 else "retrain")
    assert shares["verdict"] == expected
    assert segment["centre_shift"] < 0.01  # the same rows: the centre stays


def test_customers_far_from_every_centre_are_out_of_distribution(fitted):
    model, _ = fitted
    new = _table(N, seed=5)
    far = new[: N // 10].with_columns(pl.col("spend") + 40)
    result = drift(model, pl.concat([far, new[N // 10 :]]))
    ood = result.summary["out_of_distribution"]
    assert ood["share"] == pytest.approx(0.1 + 0.9 * 0.01, abs=0.01)
    assert ood["verdict"] == "retrain"
    assert any("out-of-distribution" in r for r in result.reasons)


def test_migration_by_id_equals_a_join_of_the_predictions(fitted, tmp_path):
    model, reference = fitted
    rng = np.random.default_rng(6)
    ids = rng.permutation(N) + N // 10  # a tenth lost, a tenth new, in another order
    new = _table(N, seed=7, ids=ids)
    new = pl.concat([new, new[:100]])  # repeated ids: the first kept
    result = drift(model, new, reference=reference, id="customer_id", spill_dir=tmp_path)
    m = result.migration
    before = reference.select("customer_id").with_columns(old=model.predict(reference))
    after = new[:N].select("customer_id").with_columns(new=model.predict(new[:N]))
    both = before.join(after, on="customer_id")
    matrix = np.zeros((3, 3), dtype=int)
    np.add.at(matrix, (both["old"].to_numpy(), both["new"].to_numpy()), 1)
    assert m["matrix"] == matrix.tolist()
    assert (m["new"], m["lost"]) == (N // 10, N // 10)
    assert m["duplicates"] == {"reference": 0, "new": 100}
    assert list(tmp_path.iterdir()) == []  # the partitions left with the result


def test_rules_can_be_set(fitted):
    model, _ = fitted
    new = _table(N, seed=8, shift=0.2)
    default = drift(model, new)
    strict = drift(model, new, rules={"psi": (0.01, 0.02), "wasserstein": (0.05, 0.1)})
    assert _feature(strict, "income")["verdict"] == "retrain"
    assert strict.rules.psi == (0.01, 0.02)
    assert _feature(default, "income")["psi"] == _feature(strict, "income")["psi"]
    with pytest.raises(DataError, match="no drift rule named nonsense"):
        drift(model, new, rules={"nonsense": (1, 2)})
    with pytest.raises(DataError, match="watch <= retrain"):
        drift(model, new, rules={"psi": (0.3, 0.1)})


def test_json_shape(fitted):
    model, reference = fitted
    doc = drift(model, _table(5_000, seed=9), reference=reference, id="customer_id").to_dict()
    doc = json.loads(json.dumps(doc, allow_nan=False))  # plain JSON, no NaN
    assert doc["verdict"] in ("stable", "watch", "retrain") and doc["reasons"]
    assert {"feature", "psi", "verdict", "reason"} <= set(doc["features"][0])
    assert {"segment", "reference_share", "new_share", "psi"} <= set(doc["segments"][0])
    assert {"matrix", "new", "lost"} <= set(doc["migration"])
    assert len(doc["migration"]["matrix"]) == 3


def test_a_model_fitted_on_an_array(blobs32):
    model = fastseg.KMeans(4, random_state=0).fit(blobs32)
    moved = blobs32 + np.array([0, 0, 5], dtype=np.float32)
    assert drift(model, blobs32).verdict == "stable"
    result = drift(model, moved)
    assert _feature(result, "x2")["verdict"] != "stable"


# ----- bad input -------------------------------------------------------------------------
def test_bad_input_is_one_clear_line(fitted, tmp_path):
    model, reference = fitted
    with pytest.raises(DataError, match="income"):
        drift(model, _table(100, seed=1).drop("income"))
    with pytest.raises(DataError, match="no rows"):
        drift(model, _table(100, seed=1)[:0])
    with pytest.raises(DataError, match="--reference"):
        drift(model, _table(100, seed=1), id="customer_id")
    with pytest.raises(DataError, match="no id column 'nope'"):
        drift(model, _table(100, seed=1), reference=reference, id="nope")


def test_a_model_without_a_profile_asks_for_the_reference(tmp_path):
    path = tmp_path / "old.json"
    from pathlib import Path

    old = Path(__file__).parents[1] / "data" / "format1_plain.json"
    path.write_text(old.read_text())
    data = Path(__file__).parents[1] / "data" / "format1_customers.parquet"
    with pytest.raises(DataError, match="no reference profile.*--reference"):
        drift(str(path), data)
    assert drift(str(path), data, reference=data).verdict == "stable"
