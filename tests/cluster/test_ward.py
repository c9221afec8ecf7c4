"""Two-stage Ward: the size-weighted agglomeration against SciPy's Ward on the points (and on
repeated points for weights), the whole estimator against scikit-learn's Ward on data it can
take, and the model file and the CLI."""

import json

import numpy as np
import polars as pl
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import AgglomerativeClustering
from sklearn.datasets import make_blobs

import fastseg
from fastseg.cli import main
from fastseg.cluster.ward import weighted_ward
from fastseg.metrics import adjusted_rand_score


@pytest.mark.parametrize("n, d, k", [(50, 2, 3), (400, 3, 5), (1000, 4, 8)])
def test_weighted_ward_with_unit_weights_is_scipys_ward(n, d, k):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, d)) + rng.integers(0, 6, (n, 1)) * 2.5
    ours = weighted_ward(X, np.ones(n), k)
    theirs = fcluster(linkage(X, "ward"), k, criterion="maxclust")
    assert adjusted_rand_score(ours, theirs) == 1.0
    assert sorted(set(ours.tolist())) == list(range(k))


def test_a_weight_is_the_point_repeated():
    rng = np.random.default_rng(1)
    X, w = rng.normal(size=(80, 2)) * 3, rng.integers(1, 5, 80)
    weighted = weighted_ward(X, w.astype(float), 5)
    repeated = fcluster(linkage(np.repeat(X, w, axis=0), "ward"), 5, criterion="maxclust")
    assert adjusted_rand_score(np.repeat(weighted, w), repeated) == 1.0


def test_two_stage_ward_finds_scikit_learns_ward_segments():
    X, _ = make_blobs(3000, n_features=3, centers=4, random_state=3)
    X = X.astype(np.float32)
    ward = fastseg.Ward(4, random_state=0).fit(X)
    theirs = AgglomerativeClustering(4, linkage="ward").fit(X)
    assert adjusted_rand_score(ward.labels_, theirs.labels_) == 1.0
    assert ward.n_iter_ == 1  # one consolidation pass
    assert np.array_equal(ward.predict(X), ward.labels_)


def test_ward_model_file_and_cli(customers, tmp_path):
    model, labels = tmp_path / "ward.json", tmp_path / "labels.parquet"
    argv = [
        "fit",
        customers,
        "--k",
        "4",
        "--features",
        "age,income,tenure_months",
        "--algorithm",
        "ward",
        "--missing",
        "drop",
        "--scale",
        "standard",
        "--model",
        model,
        "--labels",
        labels,
        "--quiet",
    ]
    assert main([str(a) for a in argv]) == 0
    doc = json.loads(model.read_text())
    assert (doc["estimator"], doc["params"]["init"], doc["params"]["max_iter"]) == (
        "Ward",
        "ward",
        1,
    )
    loaded = fastseg.load(model)
    assert type(loaded).__name__ == "Ward"
    predicted = loaded.predict(pl.read_parquet(customers))
    written = pl.read_parquet(labels)["segment"].to_numpy()
    kept = predicted >= 0
    assert np.array_equal(written[kept], predicted[kept])
    with pytest.raises(ValueError, match="init"):
        fastseg.Ward(3, init="k-means++").fit(np.zeros((10, 2), np.float32))
