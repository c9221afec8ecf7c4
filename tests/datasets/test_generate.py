"""Tests for the synthetic customer generator."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from fastseg.datasets import (
    COLUMNS,
    FEATURES,
    GENDERS,
    REGIONS,
    SCHEMA,
    SEGMENT_SHARES,
    generate_batch,
    write_customers,
)

NULLABLE = ("income", "monthly_charge", "tenure_months")


@pytest.fixture(scope="module")
def big() -> pa.Table:
    """200k rows: several internal blocks, enough for tight statistical checks."""
    return generate_batch(200_000, seed=7, null_fraction=0.05)


def test_schema_and_dtypes():
    table = generate_batch(1_000)
    assert table.column_names == list(COLUMNS)
    assert table.schema == SCHEMA
    assert table.schema.field("customer_id").type == pa.int64()
    for name in FEATURES:
        assert table.schema.field(name).type == pa.float32()
    assert table.schema.field("region").type == pa.string()
    assert table.schema.field("gender").type == pa.string()
    assert table.schema.field("true_segment").type == pa.int8()


def test_row_count_and_sequential_ids():
    table = generate_batch(70_000, start_id=5)
    assert table.num_rows == 70_000
    ids = table["customer_id"].to_numpy()
    np.testing.assert_array_equal(ids, np.arange(5, 70_005))


def test_empty_batch_keeps_schema():
    table = generate_batch(0)
    assert table.num_rows == 0
    assert table.schema == SCHEMA


def test_null_fraction_roughly_as_asked_and_independent(big):
    masks = {}
    for name in NULLABLE:
        masks[name] = big[name].is_null().to_numpy(zero_copy_only=False)
        assert masks[name].mean() == pytest.approx(0.05, abs=0.005)
    both = (masks["income"] & masks["monthly_charge"]).mean()
    assert both == pytest.approx(0.05**2, abs=0.001)
    for name in set(COLUMNS) - set(NULLABLE):
        assert big[name].null_count == 0, name


def test_zero_null_fraction_gives_no_nulls():
    table = generate_batch(100_000, seed=3, null_fraction=0.0)
    assert all(table[name].null_count == 0 for name in COLUMNS)


def test_nulls_do_not_shift_other_values():
    with_nulls = generate_batch(10_000, seed=1, null_fraction=0.3)
    without = generate_batch(10_000, seed=1, null_fraction=0.0)
    filled = pc.if_else(with_nulls["income"].is_null(), without["income"], with_nulls["income"])
    assert filled.equals(without["income"])
    assert with_nulls["age"].equals(without["age"])


def test_no_nan_or_inf_and_plausible_ranges(big):
    for name in FEATURES:
        values = big[name].drop_null().to_numpy()
        assert np.isfinite(values).all(), name
        assert (values >= 0).all(), name
    age = big["age"].to_numpy()
    assert 18 <= age.min() <= age.max() <= 90
    tenure = big["tenure_months"].drop_null().to_numpy()
    assert 0 <= tenure.min() <= tenure.max() <= 240
    np.testing.assert_array_equal(tenure, np.round(tenure))
    score = big["spending_score"].to_numpy()
    assert 1 <= score.min() <= score.max() <= 100
    assert set(big["region"].unique().to_pylist()) == set(REGIONS)
    assert set(big["gender"].unique().to_pylist()) == set(GENDERS)
    assert set(big["true_segment"].unique().to_pylist()) == set(range(6))


def test_deterministic_and_seed_dependent():
    assert generate_batch(5_000, seed=11).equals(generate_batch(5_000, seed=11))
    assert not generate_batch(5_000, seed=11).equals(generate_batch(5_000, seed=12))


def test_batches_are_slices_of_one_stream():
    # Crosses the internal 65,536-row block boundary.
    full = generate_batch(140_000, seed=4)
    part = generate_batch(10_000, seed=4, start_id=60_000)
    assert part.equals(full.slice(60_000, 10_000))


def test_segment_shares_roughly_as_designed(big):
    counts = np.bincount(big["true_segment"].to_numpy(), minlength=6) / big.num_rows
    np.testing.assert_allclose(counts, SEGMENT_SHARES, atol=0.01)


def test_archetypes_recoverable_by_kmeans():
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler

    table = generate_batch(20_000, seed=2, null_fraction=0.0)
    x = np.column_stack([table[name].to_numpy() for name in FEATURES])
    labels = KMeans(n_clusters=6, n_init=10, random_state=0).fit_predict(
        StandardScaler().fit_transform(x)
    )
    ari = adjusted_rand_score(table["true_segment"].to_numpy(), labels)
    assert 0.7 < ari < 0.999  # recoverable, but overlapping like real data


def test_write_customers_row_groups_and_content(tmp_path):
    path = tmp_path / "customers.parquet"
    progress = []
    written = write_customers(
        path, 150_000, seed=5, row_group_size=40_000, on_progress=lambda *a: progress.append(a)
    )
    assert written == 150_000
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 4
    assert [meta.row_group(i).num_rows for i in range(4)] == [40_000] * 3 + [30_000]
    assert progress == [
        (40_000, 150_000),
        (80_000, 150_000),
        (120_000, 150_000),
        (150_000, 150_000),
    ]
    assert pq.read_table(path).equals(generate_batch(150_000, seed=5))
    assert [p.name for p in tmp_path.iterdir()] == ["customers.parquet"]


def test_content_independent_of_row_group_size(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_customers(a, 100_000, seed=9, row_group_size=100_000)
    write_customers(b, 100_000, seed=9, row_group_size=17_000)
    assert pq.ParquetFile(a).num_row_groups == 1
    assert pq.ParquetFile(b).num_row_groups == 6
    assert pq.read_table(a).equals(pq.read_table(b))


def test_same_arguments_give_identical_files(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_customers(a, 30_000, seed=1, row_group_size=10_000)
    write_customers(b, 30_000, seed=1, row_group_size=10_000)
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_interrupted_write_leaves_no_temp_file_and_keeps_old_file(tmp_path, error):
    path = tmp_path / "customers.parquet"
    write_customers(path, 1_000, seed=1)
    before = path.read_bytes()

    def fail(done, total):
        raise error("stop")

    with pytest.raises(error):
        write_customers(path, 50_000, seed=2, row_group_size=10_000, on_progress=fail)
    assert [p.name for p in tmp_path.iterdir()] == ["customers.parquet"]
    assert path.read_bytes() == before


def test_invalid_arguments(tmp_path):
    path = tmp_path / "x.parquet"
    with pytest.raises(ValueError, match="n_rows must be >= 1"):
        write_customers(path, 0)
    with pytest.raises(ValueError, match="row_group_size"):
        write_customers(path, 10, row_group_size=0)
    with pytest.raises(ValueError, match="null_fraction"):
        generate_batch(10, null_fraction=1.5)
    with pytest.raises(ValueError, match="n_rows"):
        generate_batch(-1)
    with pytest.raises(ValueError, match="does not exist"):
        write_customers(tmp_path / "missing" / "x.parquet", 10)
    assert list(tmp_path.iterdir()) == []
