"""``fastseg compare``: every algorithm on the same customers, judged on one sample in
k-means' space, and a recommendation with its reason."""

import json

import pytest

from fastseg.cli import main
from fastseg.errors import DataError
from fastseg.metrics import adjusted_rand_score, silhouette_score
from fastseg.preprocess.settings import CLI_DEFAULTS
from fastseg.workflow.compare import AlgorithmResult, _recommend, compare

FEATURES = ["age", "income", "monthly_charge", "tenure_months"]


@pytest.fixture(scope="module")
def comparison(customers):
    settings = CLI_DEFAULTS.with_changes(categorical=["region"])
    return compare(
        customers,
        4,
        columns=[*FEATURES, "region"],
        settings=settings,
        sample_size=3000,
        random_state=0,
    )


def test_every_algorithm_is_judged_on_the_same_sample(comparison):
    names = [r.algorithm for r in comparison.results]
    assert names[:4] == ["kmeans", "kprototypes", "gmm", "ward"]
    kmeans = comparison.results[0]
    assert kmeans.ari_kmeans == 1.0 and kmeans.k == 4
    assert sum(kmeans.sizes) == kmeans.model._fit_sizes().sum()
    for r in comparison.results:
        assert r.seconds > 0 and r.peak_mb > 0
        assert r.stability is None or -1 <= r.stability <= 1
        assert len(r.sizes) == r.k
    assert comparison.results[2].bic is not None  # the mixture has a likelihood
    assert comparison.sample_rows <= 3000


def test_scores_are_those_of_the_sample(customers, comparison):
    """k-means' silhouette is the one of its labels on the sample rows, in its own space."""
    from fastseg.workflow.compare import _sample

    kmeans = comparison.results[0].model
    sample, space, _ = _sample(
        kmeans,
        customers,
        [*FEATURES, "region"],
        CLI_DEFAULTS.with_changes(categorical=["region"]),
        3000,
        0,
    )
    labels = kmeans.predict(sample)
    assert comparison.results[0].silhouette == pytest.approx(silhouette_score(space, labels))
    ward = comparison.results[3]
    assert ward.ari_kmeans == pytest.approx(adjusted_rand_score(labels, ward.model.predict(sample)))


def _result(name, silhouette, stability):
    return AlgorithmResult(name, 4, silhouette, 1.0, 1.0, 0.5, stability, None, [1] * 4, 1.0, 1.0)


def test_the_recommendation_and_its_reason():
    close = [_result("kmeans", 0.40, 0.95), _result("gmm", 0.405, 0.9)]
    assert _recommend(close)["algorithm"] == "kmeans"
    assert "the best other, gmm" in _recommend(close)["reason"]
    better = [_result("kmeans", 0.30, 0.95), _result("ward", 0.42, 0.9)]
    assert _recommend(better) == {
        "algorithm": "ward",
        "reason": "ward separates the segments better: silhouette 0.420 against k-means' "
        "0.300, stable (0.90)",
    }
    unstable = [_result("kmeans", 0.30, 0.95), _result("hdbscan", 0.6, 0.2)]
    assert _recommend(unstable)["algorithm"] == "kmeans"  # better, but an accident of the data


def test_bad_requests_are_clear(customers):
    with pytest.raises(DataError, match="unknown algorithm"):
        compare(customers, 3, columns=FEATURES, algorithms=["kmeans", "spectral"])
    with pytest.raises(DataError, match="kprototypes compares only with categorical"):
        compare(customers, 3, columns=FEATURES, algorithms=["kmeans", "kprototypes"])


def test_the_command_prints_a_table_and_json(customers, capsys):
    argv = [
        "compare",
        customers,
        "--features",
        ",".join(FEATURES),
        "--k",
        "3",
        "--algorithms",
        "kmeans,ward",
        "--sample",
        "2000",
        "--json",
        "--quiet",
    ]
    assert main([str(a) for a in argv]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [a["algorithm"] for a in doc["algorithms"]] == ["kmeans", "ward"]
    assert {
        "algorithm",
        "silhouette",
        "davies_bouldin",
        "calinski_harabasz",
        "seconds",
        "sizes",
    } <= set(doc["algorithms"][0])
    assert doc["recommendation"]["algorithm"] in ("kmeans", "ward")
    assert doc["recommendation"]["reason"]
    argv = argv[:-2] + ["--quiet"]
    assert main([str(a) for a in argv]) == 0
    assert "recommended: " in capsys.readouterr().out
