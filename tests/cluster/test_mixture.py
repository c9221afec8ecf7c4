"""GaussianMixture: equal to scikit-learn's from the same k-means labels, the same model
for any batch size, spilled or in RAM, array or Parquet, and a model file that round trips."""

import json
import warnings

import numpy as np
import polars as pl
import pytest
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as ScikitLearnMixture
from sklearn.utils._param_validation import InvalidParameterError

import fastseg
from fastseg.cluster import registry
from fastseg.cluster.lloyd import LloydEngine
from fastseg.cluster.mixture import GaussianMixtureEngine, n_parameters
from fastseg.cluster.mixture_estimator import GaussianMixture
from fastseg.errors import DataError

K = 5
TYPES = ("full", "diag")


@pytest.fixture(scope="module")
def X():
    """Float32 blobs sheared by a random matrix (correlated features), 10,000 rows: more
    than two reduction blocks, the last one partial."""
    X, _ = make_blobs(
        10_000, n_features=4, centers=K, cluster_std=[1, 2, 0.5, 1.5, 1], random_state=1
    )
    return (X @ np.random.RandomState(0).randn(4, 4) + 10.0).astype(np.float32)  # fmt: skip


@pytest.fixture(scope="module")
def kmeans_labels(X):
    """The labels of the k-means that initialises the mixture (same seed, same stream)."""
    return LloydEngine(K, random_state=0).fit(X).labels_


def reference(X, labels, covariance_type, **params):
    """scikit-learn's mixture on the float64 rows, initialised from the given k-means labels
    as its init_params="kmeans" turns them into responsibilities."""
    model = ScikitLearnMixture(K, covariance_type=covariance_type, **params)
    resp = np.zeros((X.shape[0], K))
    resp[np.arange(X.shape[0]), labels] = 1.0
    model._initialize_parameters = lambda X64, random_state, xp=None: model._initialize(X64, resp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X.astype(np.float64))


@pytest.fixture(scope="module", params=TYPES)
def pair(request, X, kmeans_labels):
    """(fastseg model, scikit-learn model) fitted alike."""
    ours = GaussianMixture(K, covariance_type=request.param, random_state=0).fit(X)
    return ours, reference(X, kmeans_labels, request.param)


def test_the_fit_equals_scikit_learns_from_the_same_kmeans_labels(pair, X):
    ours, theirs = pair
    assert ours.n_iter_ == theirs.n_iter_ and ours.converged_ == theirs.converged_
    np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=1e-6)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.precisions_cholesky_, theirs.precisions_cholesky_, rtol=1e-6)
    np.testing.assert_allclose(ours.precisions_, theirs.precisions_, rtol=1e-6, atol=1e-9)
    assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, rel=1e-9)
    assert (ours.labels_ == theirs.predict(X.astype(np.float64))).mean() >= 0.999
    assert ours.cluster_centers_.dtype == np.float32
    np.testing.assert_array_equal(ours.cluster_centers_, ours.means_.astype(np.float32))


def test_predict_proba_score_samples_bic_and_aic_equal_scikit_learns(pair, X):
    ours, theirs = pair
    X64 = X.astype(np.float64)
    proba = ours.predict_proba(X)
    assert proba.shape == (X.shape[0], K)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(proba, theirs.predict_proba(X64), atol=1e-8)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X64), rtol=1e-9)
    assert ours.score(X) == pytest.approx(theirs.score(X64), rel=1e-9)
    for mine, sklearns in [(ours.bic, theirs.bic), (ours.aic, theirs.aic)]:
        assert mine(X) == pytest.approx(sklearns(X64), rel=1e-9)
    assert ours.bic_ == pytest.approx(theirs.bic(X64), rel=1e-9)
    assert ours.aic_ == pytest.approx(theirs.aic(X64), rel=1e-9)
    assert n_parameters(K, 4, ours.covariance_type) == theirs._n_parameters()


def test_predict_gives_the_labels_and_the_distance_to_that_components_mean(pair, X):
    ours, _ = pair
    np.testing.assert_array_equal(ours.predict(X), ours.labels_)
    np.testing.assert_array_equal(ours.predict_proba(X).argmax(axis=1), ours.labels_)
    batch = next(ours.iter_assign(X[:100]))
    expected = ((X[:100].astype(np.float64) - ours.means_[batch.segment]) ** 2).sum(axis=1)
    np.testing.assert_allclose(batch.distance, expected, rtol=1e-12)
    assert ours.inertia_ == pytest.approx(
        float(((X.astype(np.float64) - ours.means_[ours.labels_]) ** 2).sum()), rel=1e-9
    )


@pytest.mark.parametrize("covariance_type", TYPES)
def test_stopping_on_max_iter_matches_scikit_learn_and_warns(covariance_type, X, kmeans_labels):
    with pytest.warns(ConvergenceWarning):
        ours = GaussianMixture(K, covariance_type=covariance_type, max_iter=2, random_state=0)
        ours.fit(X)
    theirs = reference(X, kmeans_labels, covariance_type, max_iter=2)
    assert ours.n_iter_ == 2 and not ours.converged_
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_the_model_is_the_same_for_any_batch_size_spilled_or_in_ram(covariance_type, X, tmp_path):
    def fit(**kwargs):
        return GaussianMixtureEngine(K, covariance_type=covariance_type, random_state=0, **kwargs)

    default = fit().fit(X).to_json()
    assert fit(batch_size=4096).fit(X).to_json() == default
    spilled = fit(batch_size=4096, memory_budget=1000, spill_dir=str(tmp_path)).fit(X)
    assert spilled.to_json() == default


def test_parquet_input_gives_the_array_model(X, tmp_path):
    path = tmp_path / "rows.parquet"
    pl.DataFrame(X, schema=list("abcd")).write_parquet(path, row_group_size=3000)
    from_array = GaussianMixtureEngine(K, random_state=0).fit(X)
    from_file = GaussianMixtureEngine(K, random_state=0, batch_size=4096).fit(str(path))
    for name in ("weights_", "means_", "covariances_", "labels_", "lower_bound_", "bic_"):
        np.testing.assert_array_equal(getattr(from_file, name), getattr(from_array, name))
    np.testing.assert_array_equal(from_file.predict(str(path)), from_array.labels_)
    np.testing.assert_array_equal(from_file.predict_proba(str(path)), from_array.predict_proba(X))


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("cls", [GaussianMixtureEngine, GaussianMixture])
def test_a_saved_model_restores_to_the_same_predictions(covariance_type, cls, X, tmp_path):
    model = cls(K, covariance_type=covariance_type, random_state=0).fit(X)
    model.save(tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["estimator"] == "GaussianMixture" and "batch_size" not in doc["params"]
    again = cls(**doc["params"])
    again._restore(doc)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(again, name), getattr(model, name))
    for name in ("lower_bound_", "converged_", "n_iter_", "bic_", "aic_", "inertia_"):
        assert getattr(again, name) == getattr(model, name)
    assert again.bic(X) == model.bic(X)
    assert again.to_json() == model.to_json()


# The registry entry (registry.py is not this change's file): fastseg.load finds the class by it.
ENTRY = registry.Algorithm(
    name="gmm",
    tag="GaussianMixture",
    engine_path="fastseg.cluster.mixture:GaussianMixtureEngine",
    estimator_path="fastseg.cluster.mixture_estimator:GaussianMixture",
    max_iter=100,
    summary="Gaussian mixture by exact EM (full or diagonal covariances), soft assignments",
)


def test_fastseg_load_reads_the_model_through_its_registry_entry(X, tmp_path, monkeypatch):
    if all(a.tag != ENTRY.tag for a in registry.ALGORITHMS):
        monkeypatch.setattr(registry, "ALGORITHMS", (*registry.ALGORITHMS, ENTRY))
    model = GaussianMixture(K, covariance_type="diag", random_state=0).fit(X)
    model.save(tmp_path / "m.json")
    again = fastseg.load(tmp_path / "m.json")
    assert type(again) is GaussianMixture
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    engine = registry.by_tag("GaussianMixture").engine()
    assert engine is GaussianMixtureEngine


def test_renumbering_components_keeps_the_model_consistent(X):
    model = GaussianMixtureEngine(K, random_state=0, max_iter=5).fit(X)
    before = model.predict_proba(X)
    order = np.array([3, 0, 4, 1, 2])
    model._renumber_components(order)
    model.cluster_centers_ = model.cluster_centers_[order]  # as workflow.segments.renumber
    np.testing.assert_allclose(model.predict_proba(X), before[:, order], rtol=1e-12)
    GaussianMixtureEngine(**model.to_dict()["params"])._restore(model.to_dict())


def damage(doc, change):
    doc = json.loads(json.dumps(doc))
    change(doc["mixture"])
    return doc


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.update(weights=[0.5] * K), "sum to 1"),
        (lambda m: m.update(covariance_type="diag"), "covariance_type"),
        (lambda m: m["means"][0].__setitem__(0, 1e3), "cluster_centers must be"),
        (lambda m: m["covariances"][0][0].__setitem__(1, 1e3), "symmetric"),
        (lambda m: m["covariances"][0][0].__setitem__(0, -1.0), "ill-defined"),
        (lambda m: m.update(covariances=[[1.0]]), "covariances must be"),
        (lambda m: m.update(converged="yes"), "converged"),
        (lambda m: m.update(bic="low"), "bic"),
    ],
)
def test_a_damaged_mixture_is_refused_on_loading(change, message, X):
    model = GaussianMixtureEngine(K, random_state=0, max_iter=3).fit(X)
    doc = damage(model.to_dict(), change)
    with pytest.raises(ValueError, match=message):
        GaussianMixtureEngine(**doc["params"])._restore(doc)


def test_more_starts_never_lower_the_bound(X):
    one = GaussianMixtureEngine(K, random_state=0).fit(X)
    three = GaussianMixtureEngine(K, n_init=3, random_state=0).fit(X)
    assert three.lower_bound_ >= one.lower_bound_


def test_integer_weights_count_as_repeated_rows_in_the_em_sums(X):
    """With one start fixed (the same k-means labels), a weighted fit's statistics are
    those of the rows repeated: compared through scikit-learn on the repeated rows."""
    rows = X[:3000]
    w = np.random.RandomState(1).randint(1, 4, rows.shape[0]).astype(np.float64)
    ours = GaussianMixtureEngine(K, random_state=0).fit(rows, sample_weight=w)
    labels = LloydEngine(K, random_state=0).fit(rows, sample_weight=w).labels_
    theirs = reference(
        np.repeat(rows, w.astype(int), axis=0), np.repeat(labels, w.astype(int)), "full"
    )
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=1e-6, atol=1e-9)
    assert ours.n_iter_ == theirs.n_iter_


@pytest.mark.parametrize("covariance_type", TYPES)
def test_collapsed_components_are_scikit_learns_error(covariance_type):
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0]], dtype=np.float32), 50, axis=0)
    model = GaussianMixtureEngine(2, covariance_type=covariance_type, reg_covar=0.0)
    with pytest.raises(DataError, match="ill-defined empirical covariance"):
        model.fit(X)


@pytest.mark.parametrize(
    "params", [{"covariance_type": "tied"}, {"reg_covar": -1.0}, {"n_components": 0}]
)
def test_the_estimator_checks_its_parameters(params, X):
    with pytest.raises(InvalidParameterError):
        GaussianMixture(**{"n_components": K, **params}).fit(X)


def test_fastseg_fit_algorithm_gmm_numbers_segments_and_saves_the_mixture(customers, tmp_path):
    """``fastseg fit --algorithm gmm``: segments numbered largest first, the mixture's weights
    renumbered with them, the model file loaded through the registry, its labels predict's."""
    from fastseg.cli import main

    model, labels = tmp_path / "gmm.json", tmp_path / "labels.parquet"
    argv = [
        "fit",
        customers,
        "--k",
        "4",
        "--features",
        "age,income,tenure_months",
        "--algorithm",
        "gmm",
        "--missing",
        "drop",
        "--model",
        model,
        "--labels",
        labels,
        "--quiet",
    ]
    assert main([str(a) for a in argv]) == 0
    loaded = fastseg.load(model)
    assert type(loaded).__name__ == "GaussianMixture"
    sizes = json.loads(model.read_text())["metrics"]["cluster_sizes"]
    assert sizes == sorted(sizes, reverse=True)
    assert np.argsort(-loaded.weights_).tolist() == [0, 1, 2, 3]  # numbered with the segments
    written = pl.read_parquet(labels)["segment"].to_numpy()
    predicted = loaded.predict(pl.read_parquet(customers))
    kept = predicted >= 0
    assert np.array_equal(written[kept], predicted[kept])
