"""The labels file after a fit: the fit's own labels, set aside on disk while the pass runs
and back in ``labels_`` afterwards; every input row once, nulls where the fit dropped rows."""

import numpy as np
import polars as pl
import pytest

from fastseg.cluster.lloyd import LloydEngine
from fastseg.errors import DataError
from fastseg.workflow.labels import write_labels


@pytest.fixture()
def fitted(customers):
    model = LloydEngine(4, random_state=0, scale="standard", missing="drop", max_iter=5)
    return model.fit(customers, columns=["age", "income", "tenure_months"])


def test_fitted_labels_are_written_in_order_and_come_back(customers, fitted, tmp_path):
    before = fitted.labels_.copy()
    out = tmp_path / "labels.parquet"
    written, unlabelled = write_labels(fitted, customers, out, fitted=True, batch_size=3000)
    np.testing.assert_array_equal(fitted.labels_, before)
    segment = pl.read_parquet(out)["segment"]
    assert written == segment.len() == pl.scan_parquet(customers).select(pl.len()).collect().item()
    assert unlabelled == segment.null_count() == fitted.n_rows_dropped_
    np.testing.assert_array_equal(segment.drop_nulls().to_numpy(), before)
    positions = np.flatnonzero(segment.is_null().to_numpy())
    np.testing.assert_array_equal(positions, fitted.dropped_rows_)


def test_a_changed_input_is_an_error_and_the_labels_stay(customers, fitted, tmp_path):
    before = fitted.labels_.copy()
    shorter = tmp_path / "shorter.parquet"
    pl.read_parquet(customers).head(10_000).write_parquet(shorter)
    with pytest.raises(DataError, match="changed between the fit and the labelling"):
        write_labels(fitted, shorter, tmp_path / "out.parquet", fitted=True)
    np.testing.assert_array_equal(fitted.labels_, before)
    assert not (tmp_path / "out.parquet").exists()


def test_the_fit_s_labels_are_out_of_memory_while_the_pass_runs(customers, fitted, tmp_path):
    import weakref

    from fastseg.workflow import labels as labels_module

    held = weakref.ref(fitted.labels_)
    write = labels_module._write
    seen = []

    def watching(batches, *args):
        seen.append((held() is None, fitted.labels_ is None))  # freed, not just unnamed
        return write(batches, *args)

    labels_module._write = watching
    try:
        write_labels(fitted, customers, tmp_path / "l.parquet", fitted=True)
    finally:
        labels_module._write = write
    assert seen == [(True, True)] and fitted.labels_ is not None
