"""Explaining segments as rules: IMM against hand-computed trees and a brute-force reference,
categorical splits, the generated customers, and the explain command."""

import itertools
import json

import numpy as np
import polars as pl
import pytest

import fastseg
from fastseg import config
from fastseg.cli import main
from fastseg.datasets import FEATURES
from fastseg.errors import DataError
from fastseg.workflow.explain import (
    Explanation,
    Sample,
    best_split,
    category_split,
    explain,
    imm_tree,
    numeric_split,
    roundest_between,
)

CORNERS = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]])  # A, B, C


def blobs(n=600, shift=0.0, seed=0):
    """Three blobs at CORNERS (+ shift), uniform noise within 1: gaps of 8 on x and y."""
    rng = np.random.default_rng(seed)
    which = np.arange(n) % 3
    xy = CORNERS[which] + shift + rng.uniform(-1, 1, (n, 2))
    return pl.DataFrame({"x": xy[:, 0], "y": xy[:, 1]})


def segment_of(model, x, y):
    return int(model.predict(pl.DataFrame({"x": [float(x)], "y": [float(y)]}))[0])


# ----- hand-computed trees -------------------------------------------------------------------
def test_three_blobs_give_the_hand_computed_tree():
    """Root: x and y both separate with no mistake; x is first, and 5 is the roundest number
    of the gap (1, 9). Then B and C: their x centres differ by noise (a split there cuts
    through both), y separates them with no mistake at 5."""
    frame = blobs()
    model = fastseg.KMeans(3, random_state=0).fit(frame)
    a, b, c = (segment_of(model, *corner) for corner in CORNERS)
    found = explain(model, frame)
    root = found.tree
    assert (root.split.kind, root.split.column, root.split.threshold) == ("numeric", 0, 5.0)
    assert root.split.mistakes == 0 and root.left.segments == [a]
    assert (root.right.split.column, root.right.split.threshold) == (1, 5.0)
    assert root.right.split.mistakes == 0
    assert found.agreement == 1.0
    rules = {s: (text, share) for s, text, share in found.rules()}
    assert rules[a] == ("x ≤ 5", pytest.approx(1 / 3))
    assert rules[b] == ("x > 5 and y ≤ 5", pytest.approx(1 / 3))
    assert rules[c] == ("x > 5 and y > 5", pytest.approx(1 / 3))
    assert "x > 5 and y > 5 → segment" in found.to_text()
    assert "agree with the model for 100% of customers" in found.to_text()


def test_log1p_and_scaled_models_split_in_original_units():
    """Centres go back to business units, so preprocessing leaves the rules as they were."""
    frame = blobs(shift=5.0)  # positive for log1p; gaps (6, 14): the roundest is 10
    texts = []
    for settings in ({}, {"scale": "standard"}, {"log1p": ["x", "y"], "scale": "robust"}):
        model = fastseg.KMeans(3, random_state=0, **settings).fit(frame)
        found = explain(model, frame)
        assert found.agreement == 1.0
        texts.append(sorted(text for _, text, _ in found.rules()))
    assert texts[0] == texts[1] == texts[2] == ["x > 10 and y > 10", "x > 10 and y ≤ 10", "x ≤ 10"]


def test_one_segment_needs_no_rule():
    frame = blobs(90)
    found = explain(fastseg.KMeans(1, random_state=0).fit(frame), frame)
    assert found.rules() == [(0, "every customer", 1.0)]
    assert found.agreement == 1.0
    assert found.to_dict()["tree"] == {"segment": 0, "segments": [0]}


def test_another_feature_splits_where_the_centres_agree_on_one():
    values = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 9.0], [0.0, 10.0]])
    labels = np.array([0, 0, 1, 1])
    centres = np.array([[0.0, 0.5], [0.0, 9.5]])
    empty = np.empty((4, 0), np.int64)
    split = best_split(values, empty, labels, centres, np.empty((2, 0), np.int64), [], [0, 1])
    assert (split.column, split.mistakes, split.threshold) == (1, 0, 5.0)


def test_identical_centres_share_a_leaf_and_the_rule_says_so():
    values = np.array([[1.0], [2.0], [3.0], [7.0], [8.0]])  # the gap (3, 7): 5
    labels = np.array([0, 1, 1, 2, 2])
    centres = np.array([[2.0], [2.0], [7.5]])  # segments 0 and 1: the same centre
    codes, modes = np.empty((5, 0), np.int64), np.empty((3, 0), np.int64)
    tree = imm_tree(values, codes, labels, centres, modes, [])
    assert tree.left.split is None and tree.left.segments == [0, 1]
    assert tree.left.segment == 1  # the one with more rows
    sample = Sample(values, codes, labels, rows=5, left_out=0)
    found = Explanation(tree, ["spend"], {}, sample, ["a", "b", "c"])
    assert found.rules() == [
        (1, "spend ≤ 5 (no feature separates segment 1 from 0)", 0.6),
        (2, "spend > 5", 0.4),
    ]
    assert found.agreement == pytest.approx(0.8)


# ----- the brute-force reference ---------------------------------------------------------------
def naive_numeric_split(values, labels, centres):
    """Every feature, every threshold between the lowest and the highest centre, mistakes
    counted row by row: (mistakes, feature, threshold), the first of the fewest."""
    best = None
    for j in range(values.shape[1]):
        low, high = centres[:, j].min(), centres[:, j].max()
        for t in np.unique(np.concatenate([values[:, j], centres[:, j]])):
            if not low <= t < high:
                continue
            own = centres[labels, j]
            mistakes = sum(
                int((x <= t) != (o <= t)) for x, o in zip(values[:, j], own, strict=True)
            )
            if best is None or mistakes < best[0]:
                best = (mistakes, j, t)
    return best


@pytest.mark.parametrize("seed", range(25))
def test_the_root_split_is_the_brute_force_one(seed):
    """Random rows and centres (whole numbers half the time: ties), random labels."""
    rng = np.random.default_rng(seed)
    n, p, k = rng.integers(5, 60), rng.integers(1, 4), rng.integers(2, 6)
    values, centres = rng.normal(0, 3, (n, p)), rng.normal(0, 3, (k, p))
    if seed % 2:
        values, centres = np.round(values), np.round(centres)
    labels = rng.integers(0, k, n)
    expected = naive_numeric_split(values, labels, centres)
    empty = np.empty((0, 0), np.int64)
    split = best_split(
        values, empty.reshape(n, 0), labels, centres, empty.reshape(k, 0), [], [*range(k)]
    )
    if expected is None:  # every centre alike on every feature
        assert split is None
        return
    mistakes, j, t = expected
    assert (split.mistakes, split.column) == (mistakes, j)
    assert np.array_equal(values[:, j] <= split.threshold, values[:, j] <= t)
    assert np.array_equal(centres[:, j] <= split.threshold, centres[:, j] <= t)


def naive_category_split(code, labels, modes, n_levels):
    """Fewest mistakes over every set S of levels that separates the centres by their modes
    (missing and unseen rows, code < 0, never in S)."""
    best = None
    for mask in itertools.product([False, True], repeat=n_levels):
        inside = np.array(mask)
        left = inside[modes]
        if left.all() or not left.any():
            continue
        goes_left = np.where(code >= 0, inside[np.maximum(code, 0)], False)
        mistakes = int(np.sum(goes_left != left[labels]))
        best = mistakes if best is None else min(best, mistakes)
    return best


@pytest.mark.parametrize("seed", range(25))
def test_the_categorical_split_is_the_brute_force_one(seed):
    rng = np.random.default_rng(seed)
    n_levels, k, n = rng.integers(2, 7), rng.integers(2, 5), rng.integers(5, 80)
    modes = rng.integers(0, n_levels, k)
    code = rng.integers(-2, n_levels, n)  # a few missing (-1) and unseen (-2)
    labels = rng.integers(0, k, n)
    found = category_split(code, labels, modes, np.arange(k), n_levels)
    expected = naive_category_split(code, labels, modes, n_levels)
    if expected is None:
        assert found is None
        return
    mistakes, levels = found
    assert mistakes == expected
    goes_left = np.isin(code, levels)
    assert int(np.sum(goes_left != np.isin(modes, levels)[labels])) == mistakes


def test_numeric_split_counts_mistakes_on_either_side():
    x = np.array([1.0, 2.0, 3.0, 7.0, 8.0, 7.5])
    own = np.array([2.0, 2.0, 2.0, 8.0, 8.0, 2.0])  # the last row sits among the high ones
    # t in [3, 7): that row only; t = 2 or 7: one more (3 or 7 on the wrong side)
    assert numeric_split(x, own, np.array([2.0, 8.0])) == (1, 3.0, 7.0)
    assert numeric_split(x, own, np.array([4.0, 4.0])) is None


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(0.99, 9.01, 5.0), (40.0, 41.0, 40.0), (80_000, 95_000, 90_000), (3.0, 11.0, 7.0)],
)
def test_thresholds_are_round_numbers_of_the_gap(low, high, expected):
    assert roundest_between(low, high) == expected


def test_a_float32_value_reads_as_written():
    low, high = float(np.float32(71.73)), float(np.float32(71.74))
    assert roundest_between(low, high) == low  # every row at 71.73 still goes left


# ----- categorical splits --------------------------------------------------------------------
@pytest.fixture(scope="module")
def regions():
    """Three segments alike in spend, told apart by region alone."""
    rng = np.random.default_rng(4)
    n = 3000
    region = np.array(["north", "south", "west"])[np.arange(n) % 3]
    return pl.DataFrame({"spend": rng.normal(100, 0.01, n), "region": region})


def test_segments_differing_by_region_split_on_region(regions):
    """By hand: spend cannot split (one value, as good as), the levels are north, south, west;
    the first single level that separates with no mistake is north, then south."""
    model = fastseg.KMeans(3, random_state=0, categorical=["region"]).fit(
        regions, columns=["spend", "region"]
    )
    found = explain(model, regions)
    assert found.tree.split.kind == "category" and found.tree.split.mistakes == 0
    assert found.agreement == 1.0
    segment = {
        level: int(model.labels_[i]) for i, level in [(0, "north"), (1, "south"), (2, "west")]
    }
    rules = {s: text for s, text, _ in found.rules()}
    assert rules[segment["north"]] == "region in {north}"
    assert rules[segment["south"]] == "region in {south}"
    assert rules[segment["west"]] == "region not in {north, south}"  # or missing, or new
    tree = found.to_dict()["tree"]
    assert (tree["feature"], tree["levels"], tree["right"]["levels"]) == (
        "region",
        ["north"],
        ["south"],
    )


def test_a_missing_or_unseen_region_goes_with_the_rest(regions):
    model = fastseg.KMeans(3, random_state=0, categorical=["region"], missing="mean").fit(
        regions, columns=["spend", "region"]
    )
    found = explain(model, regions)
    missing, unseen = found.assign(np.array([[100.0], [100.0]]), np.array([[-1], [-2]]))
    assert missing == unseen
    rule = dict((s, text) for s, text, _ in found.rules())[missing]
    assert rule.startswith("region not in {")  # the rest: any other value, or none


# ----- the generated customers -----------------------------------------------------------------
@pytest.fixture(scope="module")
def customer_model(customers):
    return fastseg.KMeans(
        5, random_state=0, scale="standard", categorical=["region"], missing="drop"
    ).fit(customers, columns=[*FEATURES, "region"])


def test_the_rules_agree_with_the_model_on_most_customers(customers, customer_model):
    found = explain(customer_model, customers)
    assert found.agreement >= 0.85  # 0.90 when written
    rules = found.rules()
    assert [s for s, _, _ in rules] == list(range(5))  # k leaves, each segment once
    assert sum(share for _, _, share in rules) == pytest.approx(1.0)
    frame = pl.read_parquet(customers)
    gaps = frame.select(pl.any_horizontal(pl.col(FEATURES).is_null())).to_series()
    assert found.sample.left_out == gaps.sum()  # missing="drop": no segment, no rule
    assert found.sample.labels.size == 20_000 - gaps.sum()
    doc = json.loads(found.to_json())
    assert doc["agreement"] == found.agreement and len(doc["rules"]) == 5
    for rule in doc["rules"]:
        assert 0.5 <= rule["agreement"] <= 1 and rule["label"]


def test_a_smaller_sample_agrees_as_well_and_batches_change_nothing(
    customers, customer_model, monkeypatch
):
    small = explain(customer_model, customers, sample_size=5000, seed=1)
    assert small.sample.labels.size + small.sample.left_out == 5000
    assert small.agreement >= 0.8
    monkeypatch.setattr(config, "batch_size", 777)
    again = explain(customer_model, customers, sample_size=5000, seed=1)
    assert again.to_dict() == small.to_dict()


def test_a_model_filling_missing_values_explains_every_customer(customers):
    model = fastseg.KMeans(4, random_state=0, log1p=["income"], missing="median").fit(
        customers, columns=list(FEATURES)
    )
    found = explain(model, customers)
    assert found.sample.left_out == 0 and found.sample.labels.size == 20_000
    assert not np.isnan(found.sample.values).any()
    assert found.agreement >= 0.8


def test_an_array_model_is_explained_on_its_array():
    X = blobs().to_numpy()
    found = explain(fastseg.KMeans(3, random_state=0).fit(X), X)
    assert found.agreement == 1.0
    assert {text.split(" ")[0] for _, text, _ in found.rules()} == {"x0"}


def test_bad_input_is_one_data_error(tmp_path, customer_model):
    with pytest.raises(DataError, match="region"):
        explain(customer_model, pl.DataFrame({"age": [1.0]}))
    with pytest.raises(DataError, match="sample_size"):
        explain(customer_model, tmp_path, sample_size=0)
    empty = pl.DataFrame({c: pl.Series([], dtype=pl.Float64) for c in FEATURES}).with_columns(
        region=pl.Series([], dtype=pl.String)
    )
    with pytest.raises(DataError, match="no rows"):
        explain(customer_model, empty)


# ----- the command ---------------------------------------------------------------------------
def test_the_command_prints_writes_and_fails_in_one_line(
    customers, customer_model, tmp_path, capsys
):
    model_path = tmp_path / "model.json"
    customer_model.save(model_path)
    assert main(["explain", str(model_path), str(customers), "--sample", "8000"]) == 0
    out = capsys.readouterr().out
    assert out.count("→ segment") == 5 and "the rules agree with the model for" in out
    target = tmp_path / "rules.json"
    args = ["explain", str(model_path), str(customers), "--json", "--out", str(target)]
    assert main(args) == 0
    doc = json.loads(target.read_text())
    assert len(doc["rules"]) == 5
    assert doc["sample_rows"] + doc["left_out"] == doc["rows"] == 20_000
    assert "rules written to" in capsys.readouterr().err
    assert main(args) == 2  # exists: --overwrite
    bad = tmp_path / "bad.parquet"
    pl.DataFrame({"age": [1.0, 2.0]}).write_parquet(bad)
    assert main(["explain", str(model_path), str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("fastseg: error: ") for line in err)
    assert main(["explain", str(model_path), str(customers), "--sample", "0"]) == 2
