"""``fastseg.cluster.kprototypes``: its Numba kernels against NumPy references (here, not in
``naive.py``: they belong to this one algorithm), parity with the kmodes package, invariance
to the input's container, batch size and threads, the model file, and bad input."""

import json
import os

import numba
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from joblib import Parallel, delayed
from kmodes.kprototypes import KPrototypes as KModesKPrototypes

from fastseg import config
from fastseg.cluster import kproto_kernels as kernels
from fastseg.cluster import registry
from fastseg.cluster.kprototypes import KPrototypes, MixedData, Totals, _relocate, lloyd
from fastseg.datasets import FEATURES
from fastseg.errors import DataError, FastsegError, ModelFileError
from fastseg.preprocess.categories import UnseenCategoryWarning

B = config.BLOCK_ROWS
CATEGORICAL = ["region", "gender"]
RTOL = 1e-12  # squared distances may be fused multiply-adds: last-bit differences only


# ----- NumPy references ----------------------------------------------------------------------
def mixed_costs(num, codes, centers, modes, gamma):
    """(n, k) mixed costs: squared distance + gamma x mismatches, in float64."""
    diff = np.asarray(num, np.float64)[:, None, :] - np.asarray(centers)[None, :, :]
    mismatches = (np.asarray(codes)[:, None, :] != np.asarray(modes)[None, :, :]).sum(axis=2)
    return (diff * diff).sum(axis=2) + gamma * mismatches


def ref_assign_accumulate(num, codes, weights, centers, modes, gamma, offsets, labels_in):
    """Reference for ``kernels.assign_accumulate``: (labels, block sums, counts, weights,
    stats); ties go to the lowest index (np.argmin)."""
    costs = mixed_costs(num, codes, centers, modes, gamma)
    labels = np.argmin(costs, axis=1)
    best = costs[np.arange(len(labels)), labels]
    k, p, n_levels = centers.shape[0], num.shape[1], offsets[-1]
    starts = range(0, num.shape[0], B)
    sums, counts = np.zeros((len(starts), k, p)), np.zeros((len(starts), k, n_levels))
    wsum, stats = np.zeros((len(starts), k)), np.zeros((len(starts), 2))
    for b, s in enumerate(starts):
        rows = slice(s, s + B)
        for i in range(s, min(s + B, num.shape[0])):
            c, w = labels[i], weights[i]
            sums[b, c] += w * num[i].astype(np.float64)
            wsum[b, c] += w
            for j, code in enumerate(codes[i]):
                counts[b, c, offsets[j] + code] += w
        stats[b] = (weights[rows] @ best[rows], (labels[rows] != labels_in[rows]).sum())
    return labels, sums, counts, wsum, stats


def mixed_data(n, p, n_levels, k, dtype=np.float32, seed=0, integers=False):
    """Random rows and prototypes; ``integers``: small whole numbers, so that ties happen."""
    rng = np.random.default_rng(seed)
    if integers:
        num = rng.integers(0, 3, (n, p)).astype(dtype)
        centers = rng.integers(0, 3, (k, p)).astype(np.float64)
    else:
        num = rng.standard_normal((n, p)).astype(dtype)
        centers = rng.standard_normal((k, p))
    codes = np.stack([rng.integers(0, m, n) for m in n_levels], axis=1).astype(np.int32)
    modes = np.stack([rng.integers(0, m, k) for m in n_levels], axis=1).astype(np.int32)
    weights = rng.uniform(0.5, 2.0, n)
    offsets = np.concatenate([[0], np.cumsum(n_levels)]).astype(np.int64)
    return num, codes, weights, centers, modes, offsets


# ----- kernels -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, B + 1, 2 * B + 100])
@pytest.mark.parametrize("integers", [False, True])
def test_assign_accumulate_matches_the_reference(dtype, n, integers):
    k, n_levels = 4, [3, 2, 5]
    num, codes, w, centers, modes, offsets = mixed_data(n, 3, n_levels, k, dtype, n, integers)
    gamma = 1.0 if integers else 0.7  # whole costs: ties, lowest index wins
    labels_in = np.random.default_rng(1).integers(0, k, n).astype(np.int32)
    nb = kernels.n_blocks(n)
    out = [np.empty((nb, k, 3)), np.empty((nb, k, 10)), np.empty((nb, k)), np.empty((nb, 2))]
    labels = labels_in.copy()
    num.setflags(write=False)  # polars and memmaps hand out read-only buffers
    kernels.assign_accumulate(num, codes, w, centers, modes, gamma, offsets, labels, *out)
    expected = ref_assign_accumulate(num, codes, w, centers, modes, gamma, offsets, labels_in)
    np.testing.assert_array_equal(labels, expected[0])
    for got, want in zip(out, expected[1:], strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_assign_and_closer_costs_match_the_reference(dtype):
    num, codes, _, centers, modes, _ = mixed_data(2 * B + 3, 4, [3, 4], 5, dtype, 3)
    codes[::7, 1] = -1  # a level the fit never saw matches no mode
    labels, costs = np.empty(len(num), np.int32), np.empty(len(num))
    kernels.assign(num, codes, centers, modes, 0.3, labels, costs)
    expected = mixed_costs(num, codes, centers, modes, 0.3)
    np.testing.assert_array_equal(labels, expected.argmin(axis=1))
    np.testing.assert_allclose(costs, expected.min(axis=1), rtol=RTOL)
    closest = np.random.default_rng(0).uniform(0, 5, len(num))
    out = np.empty(len(num))
    kernels.closer_costs(num, codes, 11, 0.3, closest, out)
    to_row = mixed_costs(num, codes, num[11:12].astype(np.float64), codes[11:12], 0.3)[:, 0]
    np.testing.assert_allclose(out, np.minimum(closest, to_row), rtol=RTOL)


# ----- the algorithm against kmodes ----------------------------------------------------------
def separated(n=600, seed=0):
    """Three well-separated groups of 2 numbers and 2 categories (mostly one level each)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, n)
    num = rng.normal(0, 1, (n, 2)) + np.array([[0, 0], [8, 0], [0, 8]])[group]
    colour = np.where(rng.random(n) < 0.8, np.array(["red", "green", "blue"])[group], "red")
    size = np.where(rng.random(n) < 0.7, np.array(["S", "M", "L"])[group], "M")
    return pl.DataFrame({"x": num[:, 0], "y": num[:, 1], "colour": colour, "size": size})


def test_same_labels_and_cost_as_kmodes_from_the_same_start():
    frame = separated()
    num = frame.select("x", "y").to_numpy().astype(np.float32).astype(np.float64)
    cats = frame.select("colour", "size").to_numpy()
    levels = [sorted(set(cats[:, j])) for j in range(2)]  # kmodes' codes: np.unique's order
    codes = np.stack([np.searchsorted(levels[j], cats[:, j]) for j in range(2)], axis=1)
    start = [0, 1, 2]
    init_num, init_cat = num[start].copy(), codes[start].astype(np.int32)
    gamma = 2.5
    theirs = KModesKPrototypes(3, init=[init_num.copy(), init_cat.copy()], gamma=gamma, n_init=1)
    theirs.fit(np.hstack([num, cats]).astype(object), categorical=[2, 3])
    data = MixedData.of_arrays(num.astype(np.float32), codes.astype(np.int32), None, [3, 3])
    centers, modes, labels, cost, _ = lloyd(data, init_num.copy(), init_cat.copy(), gamma, 100)
    np.testing.assert_array_equal(labels, theirs.labels_)
    assert cost == pytest.approx(theirs.cost_, rel=1e-9)
    np.testing.assert_allclose(centers, theirs._enc_cluster_centroids[0], rtol=1e-9)
    np.testing.assert_array_equal(modes, theirs._enc_cluster_centroids[1])


@pytest.fixture(scope="module")
def mixed(customers):
    """The 20,000 generated customers (seed 3) without the rows holding a null."""
    return pl.read_parquet(customers).select([*FEATURES, *CATEGORICAL]).drop_nulls()


def kmodes_cost(frame, seed):
    X = frame.to_pandas().to_numpy(dtype=object)
    model = KModesKPrototypes(6, n_init=1, random_state=seed)
    model.fit(X, categorical=[len(FEATURES), len(FEATURES) + 1])
    return model.cost_, model.gamma


def test_cost_over_seeds_no_worse_than_kmodes(mixed):
    """Mean cost over seeds within 2% of kmodes' (default Cao init), same default gamma, on
    5,000 of the customers (kmodes takes about 20 s a seed on all 20,000; the benchmark
    compares there). kmodes' seeds run in parallel; ours are fast enough for 20 seeds (one
    start in about six lands 7% above the best here, so 5 seeds would be a coin toss)."""
    mixed = mixed.sample(5000, seed=0)
    theirs = Parallel(n_jobs=min(5, os.cpu_count() or 1))(
        delayed(kmodes_cost)(mixed, s) for s in range(5)
    )
    ours = [KPrototypes(6, random_state=s).fit(mixed, categorical=CATEGORICAL) for s in range(20)]
    assert ours[0].gamma_ == pytest.approx(theirs[0][1], rel=1e-9)  # kmodes' default gamma
    mean_ours = np.mean([m.cost_ for m in ours])
    mean_theirs = np.mean([c for c, _ in theirs])
    assert mean_ours <= 1.02 * mean_theirs, (mean_ours / mean_theirs, ours, theirs)


def test_cost_is_kmodes_definition(mixed):
    model = KPrototypes(6, random_state=0).fit(mixed, categorical=CATEGORICAL)
    num = mixed.select(FEATURES).to_numpy().astype(np.float64)
    cats = mixed.select(CATEGORICAL).to_numpy()
    modes = model.cluster_centroids_[:, len(FEATURES) :]
    centers = model.cluster_centroids_[:, : len(FEATURES)].astype(np.float64)
    costs = ((num[:, None, :] - centers[None]) ** 2).sum(axis=2)
    costs += model.gamma_ * (cats[:, None, :] != modes[None]).sum(axis=2)
    np.testing.assert_array_equal(model.labels_, costs.argmin(axis=1))
    assert model.cost_ == pytest.approx(costs.min(axis=1).sum(), rel=1e-9)
    assert model.gamma_ == pytest.approx(0.5 * num.std(axis=0).mean(), rel=1e-9)


# ----- invariance ----------------------------------------------------------------------------
def same_fit(a, b):
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.modes_, b.modes_)
    assert a.cost_ == b.cost_ and a.n_iter_ == b.n_iter_ and a.gamma_ == b.gamma_


def test_parquet_pandas_arrow_and_polars_give_the_same_fit(mixed, tmp_path):
    path = tmp_path / "mixed.parquet"
    mixed.write_parquet(path, row_group_size=3000)
    fits = [
        KPrototypes(4, random_state=1, n_init=2).fit(X, categorical=CATEGORICAL)
        for X in (mixed, path, mixed.to_pandas(), mixed.to_arrow())
    ]
    for other in fits[1:]:
        same_fit(fits[0], other)


def test_batch_size_and_threads_do_not_change_the_fit(mixed):
    base = KPrototypes(5, random_state=2).fit(mixed, categorical=CATEGORICAL)
    small = KPrototypes(5, random_state=2, batch_size=1000).fit(mixed, categorical=CATEGORICAL)
    same_fit(base, small)
    if numba.config.NUMBA_NUM_THREADS > 1:
        one = KPrototypes(5, random_state=2, n_threads=1).fit(mixed, categorical=CATEGORICAL)
        same_fit(base, one)


@pytest.mark.parametrize("scale", ["none", "standard"])
def test_spilled_rows_give_the_same_fit(mixed, tmp_path, scale):
    """Over the memory budget the decoded rows go to spill files read back in chunks (the
    scaling written back to them): the same model, and the files leave nothing behind."""
    params = dict(random_state=1, scale=scale, n_init=2)
    base = KPrototypes(5, **params).fit(mixed, categorical=CATEGORICAL)
    spilled = KPrototypes(5, **params, memory_budget=1, batch_size=5000, spill_dir=tmp_path)
    same_fit(base, spilled.fit(mixed, categorical=CATEGORICAL))
    assert list(tmp_path.iterdir()) == []


def test_weights_equal_repeated_rows():
    frame = separated(300, seed=4)
    repeats = np.random.default_rng(0).integers(1, 4, frame.height)
    repeated = frame[np.repeat(np.arange(frame.height), repeats)]

    def run(f, weights):  # from the same start: the first three rows of ``frame``
        num = f.select("x", "y").to_numpy().astype(np.float32)
        codes = np.stack(
            [f[c].replace_strict(sorted(set(f[c])), [0, 1, 2]) for c in ("colour", "size")], 1
        ).astype(np.int32)
        data = MixedData.of_arrays(num, codes, weights, [3, 3])
        first = np.cumsum(repeats)[:3] - 1
        return lloyd(data, num[first].astype(np.float64), codes[first], 2.0, 100)

    a = run(frame, repeats.astype(np.float64))
    b = run(repeated, np.ones(repeated.height))
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(np.repeat(a[2], repeats), b[2])
    assert a[3] == pytest.approx(b[3], rel=1e-12)


def test_sample_weight_column_equals_weights_given(mixed):
    weights = np.random.default_rng(0).uniform(0.5, 2, mixed.height)
    framed = mixed.with_columns(w=weights)
    cols = [*FEATURES]
    a = KPrototypes(3, random_state=0).fit(
        framed, categorical=CATEGORICAL, columns=cols, sample_weight="w"
    )
    b = KPrototypes(3, random_state=0).fit(mixed, categorical=CATEGORICAL, sample_weight=weights)
    same_fit(a, b)


def test_ties_in_modes_take_the_first_level():
    frame = pl.DataFrame({"x": [0.0, 0.0, 100.0, 100.0], "c": ["b", "a", "z", "z"]})
    model = KPrototypes(2, random_state=0, gamma=0.0).fit(frame, categorical=["c"])
    by_x = dict(zip(model.cluster_centers_[:, 0], model.cluster_centroids_[:, 1], strict=True))
    assert by_x == {0.0: "a", 100.0: "z"}


def test_an_empty_prototype_is_moved_to_the_costliest_row():
    frame = separated(300, seed=5)
    num = frame.select("x", "y").to_numpy().astype(np.float32)
    codes = np.zeros((frame.height, 1), np.int32)
    data = MixedData.of_arrays(num, codes, None, [1])
    far = np.array([[1e6, 1e6], [1e6, 1e6], [0.0, 0.0]])  # two far away: one stays empty
    _, _, labels, _, _ = lloyd(data, far, np.zeros((3, 1), np.int32), 1.0, 100)
    assert np.bincount(labels, minlength=3).min() > 0


def test_empty_prototypes_move_to_the_costliest_rows_across_chunks():
    """The relocation keeps the costliest rows of each chunk: the same rows as one argsort
    over all of them (ties: the first row), however the rows are chunked."""
    rng = np.random.default_rng(8)
    num = rng.integers(0, 4, (3 * B + 11, 2)).astype(np.float32)  # whole numbers: tied costs
    codes = rng.integers(0, 2, (num.shape[0], 1)).astype(np.int32)
    centers, modes = np.array([[1.0, 1.0], [9.0, 9.0], [8.0, 8.0]]), np.zeros((3, 1), np.int32)
    costs = mixed_costs(num, codes, centers, modes, 0.5).min(axis=1)
    expected = np.argsort(-costs, kind="stable")[:2]
    for chunk_rows in (B, 2 * B, 4 * B):
        data = MixedData.of_arrays(num, codes, None, [2])
        data.chunk_rows = chunk_rows
        moved, moved_modes = centers.copy(), modes.copy()
        _relocate(data, moved, moved_modes, 0.5, np.array([1, 2]))
        np.testing.assert_array_equal(moved[1:], num[expected])
        np.testing.assert_array_equal(moved_modes[1:], codes[expected])


# ----- prediction, profile and the model file -----------------------------------------------
@pytest.mark.parametrize("scale", ["none", "standard"])
def test_save_load_predict_round_trip(mixed, tmp_path, scale, monkeypatch):
    model = KPrototypes(4, random_state=0, scale=scale).fit(mixed, categorical=CATEGORICAL)
    np.testing.assert_array_equal(model.predict(mixed), model.labels_)
    assert -model.score(mixed) == pytest.approx(model.cost_, rel=1e-9)
    path = tmp_path / "model.json"
    model.save(path)
    loaded = KPrototypes.load(path)
    np.testing.assert_array_equal(loaded.predict(mixed), model.labels_)
    assert loaded.to_dict() == model.to_dict()
    centroids = model.cluster_centroids_
    assert centroids.shape == (4, len(FEATURES) + 2)
    table = loaded.centers_in_original_units()
    assert table["size"].to_list() == np.bincount(model.labels_).tolist()
    assert table["region"].to_list() == centroids[:, len(FEATURES)].tolist()
    np.testing.assert_allclose(table["income"].to_numpy(), centroids[:, 1].astype(float))
    if scale == "standard":  # prototypes in input units: near the segment means
        means = mixed.with_columns(s=model.labels_).group_by("s").agg(pl.mean("age")).sort("s")
        np.testing.assert_allclose(table["age"], means["age"], rtol=1e-5)
    # the registry entry recommended for fastseg.load
    entry = registry.Algorithm(
        "kprototypes",
        "KPrototypes",
        "fastseg.cluster.kprototypes:KPrototypes",
        "fastseg.cluster.kprototypes:KPrototypes",
        100,
        "k-prototypes for numbers and categories together (Huang 1998)",
    )
    monkeypatch.setattr(registry, "ALGORITHMS", (*registry.ALGORITHMS, entry))
    from fastseg.cluster.modelfile import load

    np.testing.assert_array_equal(load(path).predict(mixed.head(100)), model.labels_[:100])


def test_predict_counts_unseen_levels(mixed):
    model = KPrototypes(3, random_state=0).fit(mixed, categorical=CATEGORICAL)
    new = mixed.head(50).with_columns(region=pl.lit("mars"))
    with pytest.warns(UnseenCategoryWarning, match="mars"):
        labels = model.predict(new)
    assert labels.shape == (50,)


def test_predict_gives_no_segment_to_a_row_with_a_gap_after_a_dropping_fit(mixed):
    model = KPrototypes(3, random_state=0, missing="drop").fit(mixed, categorical=CATEGORICAL)
    new = mixed.head(20).with_columns(
        income=pl.when(pl.int_range(pl.len()) % 4 == 1).then(None).otherwise(pl.col("income"))
    )
    labels = model.predict(new)
    np.testing.assert_array_equal(labels[1::4], -1)
    keep = np.arange(20) % 4 != 1
    np.testing.assert_array_equal(labels[keep], model.predict(mixed.head(20))[keep])


def test_a_damaged_model_file_is_one_clear_error(mixed, tmp_path):
    model = KPrototypes(3, random_state=0).fit(mixed, categorical=CATEGORICAL)
    doc = model.to_dict()
    doc["modes"][0][0] = 99
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match="modes"):
        KPrototypes.load(path)


# ----- bad input -----------------------------------------------------------------------------
def test_bad_input_is_one_clear_data_error(mixed):
    with pytest.raises(DataError, match="categorical columns"):
        KPrototypes(3).fit(mixed)
    with pytest.raises(DataError, match="categorical columns"):
        KPrototypes(3).fit(mixed, categorical=[])
    with pytest.raises(DataError, match="must be numeric.*'region'"):
        KPrototypes(3).fit(mixed, categorical=["gender"], columns=["age", "region"])
    text_age = mixed.with_columns(pl.col("age").cast(pl.String))
    with pytest.raises(DataError, match="'age'"):
        KPrototypes(3).fit(text_age, categorical=CATEGORICAL)
    with pytest.raises(DataError, match="missing values"):
        holed = mixed.with_columns(
            age=pl.when(pl.int_range(pl.len()) == 7).then(None).otherwise("age")
        )
        KPrototypes(3).fit(holed, categorical=CATEGORICAL)
    no_region = mixed.with_columns(
        region=pl.when(pl.col("age") > 80).then(None).otherwise("region")
    )
    with pytest.raises(DataError, match="categorical column 'region'.*missing values"):
        KPrototypes(3).fit(no_region, categorical=CATEGORICAL)
    with pytest.raises(DataError, match="no numeric column|at least one numeric"):
        KPrototypes(3).fit(mixed.select(CATEGORICAL), categorical=CATEGORICAL)
    with pytest.raises(DataError, match="not ndarray"):
        KPrototypes(3).fit(np.zeros((5, 2)), categorical=["a"])
    with pytest.raises(DataError, match="sample_weight"):
        KPrototypes(3).fit(mixed, categorical=CATEGORICAL, sample_weight=[1.0, 2.0])
    with pytest.raises(DataError, match="distinct rows"):
        KPrototypes(3).fit(pl.DataFrame({"x": [1.0] * 5, "c": ["a"] * 5}), categorical=["c"])
    with pytest.raises(FastsegError, match="not fitted"):
        KPrototypes(3).predict(mixed)
    with pytest.raises(ValueError, match="gamma"):
        KPrototypes(3, gamma=-1.0).fit(mixed, categorical=CATEGORICAL)


def test_pandas_categorical_and_integer_levels():
    frame = separated(200, seed=6)
    frame = frame.with_columns(size=pl.col("size").replace_strict({"S": 1, "M": 2, "L": 3}))
    pandas = frame.to_pandas().astype({"colour": "category"})
    assert isinstance(pandas["colour"].dtype, pd.CategoricalDtype)
    a = KPrototypes(3, random_state=0).fit(pandas, categorical=["colour", "size"])
    b = KPrototypes(3, random_state=0).fit(
        pa.Table.from_pandas(pandas), categorical=["colour", "size"]
    )
    same_fit(a, b)
    assert a.categories_["size"] == [1, 2, 3]
    np.testing.assert_array_equal(a.predict(frame), a.labels_)


def test_a_pass_reads_spilled_rows_a_batch_at_a_time(monkeypatch):
    """A pass's chunk is at most a batch: a spilled store reads each chunk into a buffer of
    that size (it once took the whole data: 224 MB more at 8M rows)."""
    monkeypatch.setattr(config, "batch_size", 2 * B)
    rng = np.random.default_rng(0)
    num = rng.standard_normal((30 * B, 3)).astype(np.float32)
    data = MixedData.of_arrays(num, np.zeros((30 * B, 1), np.int32), None, [1])
    assert data.chunk_rows == 2 * B
    assert Totals(4, data).chunk_rows <= data.chunk_rows
