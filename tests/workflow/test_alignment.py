"""fit --align-to keeps segment numbers across refits; fit --k auto picks k by select-k."""

import numpy as np
import polars as pl
import pytest
from sklearn.datasets import make_blobs

import fastseg
from fastseg.cli import main
from fastseg.cluster.modelfile import load_engine
from fastseg.errors import DataError
from fastseg.workflow import select_k as selection
from fastseg.workflow.segments import align_to, centers_in_original_units, order_by_size, renumber

CENTERS = [[0, 0, 0], [8, 0, 0], [0, 8, 0], [0, 0, 8], [8, 8, 8]]


def quarter(tmp_path, name, seed, n=4000, centers=CENTERS):
    X, _ = make_blobs(n, centers=np.asarray(centers, float), cluster_std=1.0, random_state=seed)
    path = tmp_path / f"{name}.parquet"
    pl.DataFrame(X, schema=["a", "b", "c"]).write_parquet(path)
    return path


def fit(path, k, seed):
    model = fastseg.KMeans(k, random_state=seed, scale="standard", missing="drop")
    model.fit(path, columns=["a", "b", "c"])
    order_by_size(model)
    return model


def test_a_shuffled_model_aligns_back(tmp_path):
    before = fit(quarter(tmp_path, "q1", 0), 5, 0)
    after = fit(quarter(tmp_path, "q1", 0), 5, 0)
    renumber(after, np.array([3, 0, 4, 1, 2]))
    labels = after.labels_.copy()
    moved = align_to(after, before)
    np.testing.assert_array_equal(after.cluster_centers_, before.cluster_centers_)
    np.testing.assert_array_equal(after.labels_, before.labels_)
    assert not np.array_equal(labels, after.labels_) and moved.max() == 0


def test_next_quarter_keeps_each_kind_of_customer_on_its_number(tmp_path):
    before = fit(quarter(tmp_path, "q1", 0), 5, 0)
    after = fit(quarter(tmp_path, "q2", 1), 5, 7)
    align_to(after, before)
    old, new = centers_in_original_units(before), centers_in_original_units(after)
    nearest = ((new[:, None] - old[None]) ** 2).sum(-1).argmin(axis=1)
    np.testing.assert_array_equal(nearest, np.arange(5))


def test_a_new_segment_takes_the_next_number(tmp_path):
    before = fit(quarter(tmp_path, "q1", 0, centers=CENTERS[:4]), 4, 0)
    after = fit(quarter(tmp_path, "q2", 1), 5, 0)
    align_to(after, before)
    new = centers_in_original_units(after)
    assert np.abs(new[4] - [8, 8, 8]).max() < 0.5  # the new kind of customer is segment 4


def test_alignment_needs_the_same_features_and_no_fewer_segments(tmp_path):
    before = fit(quarter(tmp_path, "q1", 0), 5, 0)
    with pytest.raises(DataError, match="as many segments or more"):
        align_to(fit(quarter(tmp_path, "q2", 1), 4, 0), before)
    other = fastseg.KMeans(5, random_state=0).fit(
        pl.read_parquet(quarter(tmp_path, "q3", 2)).rename({"c": "z"})
    )
    with pytest.raises(DataError, match="not these"):
        align_to(other, before)


def test_fit_align_to_command(tmp_path, capsys):
    q1, q2 = quarter(tmp_path, "q1", 0), quarter(tmp_path, "q2", 1)
    m1, m2 = tmp_path / "m1.json", tmp_path / "m2.json"
    base = ["fit", "--k", "5", "--features", "a,b,c", "--quiet"]
    assert main([base[0], str(q1), *base[1:], "--model", str(m1)]) == 0
    assert main([base[0], str(q2), *base[1:], "--model", str(m2), "--align-to", str(m1)]) == 0
    old = centers_in_original_units(load_engine(m1))
    new = centers_in_original_units(load_engine(m2))
    np.testing.assert_array_equal(((new[:, None] - old[None]) ** 2).sum(-1).argmin(1), range(5))
    capsys.readouterr()
    code = main([base[0], str(q2), "--k", "3", "--features", "a,b,c", "--align-to", str(m1)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "as many segments" in err


def test_fit_k_auto_takes_the_knee(tmp_path, capsys):
    path = quarter(tmp_path, "q1", 0)
    model_path = tmp_path / "m.json"
    args = ["fit", str(path), "--k", "auto", "--k-range", "2:9", "--features", "a,b,c"]
    assert main([*args, "--model", str(model_path)]) == 0
    assert "--k auto: k = 5, the knee of the inertia curve" in capsys.readouterr().err
    assert load_engine(model_path).n_clusters == 5


def test_fit_k_auto_without_a_knee_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(selection, "find_knee", lambda *args, **kwargs: None)
    path = quarter(tmp_path, "q1", 0)
    assert main(["fit", str(path), "--k", "auto", "--k-range", "3:6", "--features", "a,b,c"]) == 0
    assert "no clear knee; k = 5, the best silhouette" in capsys.readouterr().err


@pytest.mark.parametrize(
    "settings",
    [dict(pca=2), dict(log1p=["a"]), dict(categorical=["kind"])],
    ids=["pca", "log1p", "categorical"],
)
def test_a_shuffled_model_aligns_back_whatever_its_preprocessing(tmp_path, settings):
    X, _ = make_blobs(4000, centers=np.asarray(CENTERS, float) + 20, random_state=0)
    frame = pl.DataFrame(X, schema=["a", "b", "c"]).with_columns(
        kind=pl.Series(np.array(["u", "v"])[np.arange(4000) % 2])
    )
    fit_ = lambda: fastseg.KMeans(5, random_state=0, scale="standard", **settings).fit(  # noqa: E731
        frame, columns=["a", "b", "c"]
    )
    before, after = fit_(), fit_()
    renumber(after, np.array([3, 0, 4, 1, 2]))
    align_to(after, before)
    np.testing.assert_array_equal(after.labels_, before.labels_)


def test_fit_align_to_with_categorical_columns(tmp_path, capsys):
    X, _ = make_blobs(3000, centers=np.asarray(CENTERS, float), random_state=0)
    path = tmp_path / "q.parquet"
    pl.DataFrame(X, schema=["a", "b", "c"]).with_columns(
        kind=pl.Series(np.array(["u", "v"])[np.arange(3000) % 2])
    ).write_parquet(path)
    m1, m2 = tmp_path / "m1.json", tmp_path / "m2.json"
    base = ["fit", str(path), "--k", "5", "--features", "a,b,c", "--categorical", "kind", "--quiet"]
    assert main([*base, "--model", str(m1)]) == 0
    assert main([*base, "--model", str(m2), "--align-to", str(m1), "--seed", "4"]) == 0
    assert main(["fit", str(path), "--k", "5", "--features", "a,b,c", "--align-to", str(m1)]) == 2
    assert "categorical" in capsys.readouterr().err
