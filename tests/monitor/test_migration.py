"""Migration by id: the partitioned join on disk agrees with a plain in-memory count, whatever
the number of partitions or the way the batches were cut, and its errors say what to do."""

import errno
from itertools import pairwise

import numpy as np
import polars as pl
import pytest

from fastseg import config
from fastseg.errors import DataError, FastsegError
from fastseg.monitor import migration as migration_module
from fastseg.monitor.migration import Migration

K = 4


def periods(seed, kind="int", n=3000):
    """Two periods drawn from one pool of ids (so some are in both, some in one): repeated ids,
    null ids and rows without a segment on each side. Each side: (ids, segments, assigned)."""
    rng = np.random.default_rng(seed)
    sides = {}
    for side, pool in (("reference", (0, 2000)), ("new", (1000, 3000))):
        raw = rng.integers(*pool, size=n)
        ids = [f"c{i:05d}" for i in raw] if kind == "str" else (raw * 7919 - 10**12).tolist()
        for row in np.flatnonzero(rng.random(n) < 0.03):
            ids[row] = None
        dtype = pl.String if kind == "str" else pl.Int64
        sides[side] = (
            pl.Series("customer_id", ids, dtype=dtype),
            rng.integers(0, K, size=n).astype(np.int32),
            rng.random(n) > 0.1,
        )
    return sides


def naive(sides):
    """The same counts with Python dicts over the whole data, row by row."""
    first, out = {}, {"duplicates": {}, "missing_ids": {}}
    for side, (ids, segments, assigned) in sides.items():
        seen, repeated, missing = {}, 0, 0
        for i, s, a in zip(ids.to_list(), segments.tolist(), assigned.tolist(), strict=True):
            if i is None:
                missing += 1
            elif i in seen:
                repeated += 1
            else:
                seen[i] = s if a else None
        first[side] = seen
        out["duplicates"][side], out["missing_ids"][side] = repeated, missing
    ref, new = first["reference"], first["new"]
    matrix = [[0] * K for _ in range(K)]
    unassigned = 0
    for i in ref.keys() & new.keys():
        if ref[i] is None or new[i] is None:
            unassigned += 1
        else:
            matrix[ref[i]][new[i]] += 1
    out.update(matrix=matrix, matched=sum(map(sum, matrix)), unassigned=unassigned)
    out.update(new=len(new.keys() - ref.keys()), lost=len(ref.keys() - new.keys()))
    return out


def batches(sides, cuts, seed):
    """Each side cut into ``cuts`` batches at random places; the sides' batches interleaved
    at random, each side's in order."""
    rng = np.random.default_rng(seed)
    queue = {}
    for side, (ids, segments, assigned) in sides.items():
        edges = np.sort(rng.choice(np.arange(1, len(ids)), size=cuts - 1, replace=False))
        bounds = [0, *edges.tolist(), len(ids)]
        queue[side] = [(ids[a:b], segments[a:b], assigned[a:b]) for a, b in pairwise(bounds)]
    order = [side for side in queue for _ in queue[side]]
    rng.shuffle(order)
    return [(side, *queue[side].pop(0)) for side in order]


def run(sides, cuts=1, seed=0, **kwargs):
    rows = max(len(s[0]) for s in sides.values())
    with Migration(K, rows, **kwargs) as migration:
        for side, *batch in batches(sides, cuts, seed):
            migration.add(side, *batch)
        return migration.result()


@pytest.fixture
def partition_rows(monkeypatch):
    """Set ``config.migration_partition_rows`` (so the data spans several partitions)."""

    def set_rows(rows):
        monkeypatch.setattr(config, "migration_partition_rows", rows, raising=False)

    return set_rows


@pytest.mark.parametrize("kind", ["int", "str"])
@pytest.mark.parametrize("seed", [0, 1])
def test_migration_agrees_with_a_plain_count_in_memory(kind, seed, partition_rows, tmp_path):
    sides = periods(seed, kind)
    expected = naive(sides)
    assert expected["duplicates"]["reference"] > 0 and expected["missing_ids"]["new"] > 0
    assert expected["new"] > 0 and expected["lost"] > 0 and expected["unassigned"] > 0
    results = []
    for rows_per_partition, cuts in [(1 << 20, 1), (1 << 20, 9), (250, 1), (250, 9), (61, 40)]:
        partition_rows(rows_per_partition)
        results.append(run(sides, cuts, seed, spill_dir=tmp_path, column="customer_id"))
    assert results[0] == expected
    assert all(result == expected for result in results)


def test_several_partitions_are_used(partition_rows, tmp_path):
    partition_rows(250)
    sides = periods(5)
    with Migration(K, 3000, spill_dir=tmp_path) as migration:
        assert migration.n_partitions == 12
        for side, ids, segments, assigned in batches(sides, 3, 5):
            migration.add(side, ids, segments, assigned)
        files = list(tmp_path.glob("fastseg-migration-*/*"))
        assert len(files) == 2 * 12
        assert migration.result() == naive(sides)


def test_result_is_plain_python_ints(tmp_path):
    result = run(periods(2), 3, spill_dir=tmp_path)
    assert type(result["matched"]) is int and type(result["duplicates"]["new"]) is int
    assert all(type(cell) is int for row in result["matrix"] for cell in row)


def with_ids(sides, cast):
    """``sides`` with each side's ids replaced by ``cast[side](ids)``."""
    return {side: (cast[side](ids), *rest) for side, (ids, *rest) in sides.items()}


def test_id_widths_and_encodings_match_across_sides(partition_rows, tmp_path):
    partition_rows(500)
    sides = periods(3)  # Int64 ids from -10**12 up
    wide = with_ids(
        sides,
        {
            "reference": lambda ids: (ids + 10**12).cast(pl.UInt64),
            "new": lambda ids: (ids + 10**12).cast(pl.Int128),
        },
    )
    assert run(wide, 4, spill_dir=tmp_path) == naive(sides)

    narrow = with_ids(
        sides,
        {
            "reference": lambda ids: (ids // 7919 % 30000).cast(pl.Int16),
            "new": lambda ids: (ids // 7919 % 30000).cast(pl.UInt32),
        },
    )
    assert narrow["reference"][0].dtype == pl.Int16
    assert run(narrow, 4, spill_dir=tmp_path) == naive(narrow)

    text = periods(3, "str")
    levels = sorted(text["new"][0].drop_nulls().unique())
    coded = with_ids(
        text,
        {
            "reference": lambda ids: ids.cast(pl.Categorical),
            "new": lambda ids: ids.cast(pl.Enum(levels)),
        },
    )
    assert run(coded, 5, spill_dir=tmp_path) == naive(text)


def test_empty_and_all_null_sides(tmp_path):
    with Migration(K, 0, spill_dir=tmp_path) as migration:
        migration.add("reference", pl.Series([None, None]), np.zeros(2, np.int32), [True] * 2)
        migration.add("new", pl.Series([], dtype=pl.Int64), np.zeros(0, np.int32), [])
        result = migration.result()
    assert result["matrix"] == [[0] * K] * K
    assert result["missing_ids"] == {"reference": 2, "new": 0}
    assert result["new"] == result["lost"] == result["matched"] == 0

    with Migration(2, 3, spill_dir=tmp_path) as migration:
        migration.add("new", pl.Series([5, 5, 6]), np.array([0, 1, 1], np.int32), [True] * 3)
        result = migration.result()
    assert result["new"] == 2 and result["lost"] == 0 and result["duplicates"]["new"] == 1


def one_line_error(error_type, call):
    with pytest.raises(error_type) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_float_and_other_ids_are_refused(tmp_path):
    for values in ([1.0, 2.5], [True, False], [[1], [2]]):
        with Migration(K, 2, spill_dir=tmp_path, column="x") as migration:
            ids = pl.Series("x", values)
            message = one_line_error(
                DataError, lambda m=migration, i=ids: m.add("new", i, np.zeros(2, np.int32), [1, 1])
            )
        assert "'x'" in message and "integers or text" in message
    assert "Float64" in one_line_error(
        DataError,
        lambda: Migration(K, 1).add("reference", pl.Series([0.5]), np.zeros(1, np.int32), [1]),
    )


def test_integer_and_text_ids_do_not_mix(tmp_path):
    with Migration(K, 2, spill_dir=tmp_path, column="customer_id") as migration:
        migration.add("reference", pl.Series([1, 2]), np.zeros(2, np.int32), [True, True])
        message = one_line_error(
            DataError,
            lambda: migration.add("new", pl.Series(["1", "2"]), np.zeros(2, np.int32), [1, 1]),
        )
    assert "'customer_id'" in message and "integers in the reference data" in message
    assert "text in the new data" in message and "cast" in message


def test_uint64_beyond_int64_is_refused(tmp_path):
    too_big = pl.Series("id", [1, 2**63], dtype=pl.UInt64)
    with Migration(K, 2, spill_dir=tmp_path) as migration:
        migration.add("reference", pl.Series([2**63 - 1], dtype=pl.UInt64), np.zeros(1), [1])
        message = one_line_error(
            DataError, lambda: migration.add("new", too_big, np.zeros(2, np.int32), [1, 1])
        )
    assert str(2**63) in message and "text" in message


def test_temporary_files_are_gone_after_close(tmp_path, partition_rows):
    partition_rows(100)
    migration = Migration(K, 3000, spill_dir=tmp_path)
    for side, ids, segments, assigned in batches(periods(4), 5, 4):
        migration.add(side, ids, segments, assigned)
    (folder,) = tmp_path.iterdir()
    assert folder.name.startswith("fastseg-migration-") and len(list(folder.iterdir())) == 60
    migration.result()
    migration.close()
    assert list(tmp_path.iterdir()) == []
    migration.close()  # twice: nothing
    with pytest.raises(ValueError, match="closed"):
        migration.result()

    with Migration(K, 10, spill_dir=tmp_path) as migration:
        migration.add("new", pl.Series([1, 2]), np.zeros(2, np.int32), [True, True])
        assert list(tmp_path.iterdir()) != []
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_names_the_spill_folder_and_spill_dir(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with Migration(K, 2, spill_dir=tmp_path) as migration:
        monkeypatch.setattr(migration_module, "open", full, raising=False)
        message = one_line_error(
            FastsegError, lambda: migration.add("new", pl.Series([1]), np.zeros(1, np.int32), [1])
        )
    assert str(tmp_path) in message and "--spill-dir" in message and "full" in message


def test_a_missing_spill_dir_is_said(tmp_path):
    message = one_line_error(FastsegError, lambda: Migration(K, 1, spill_dir=tmp_path / "nope"))
    assert "nope" in message and "--spill-dir" in message
