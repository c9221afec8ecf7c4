"""Every clustering algorithm, named once: its CLI name, its model-file tag, the engine that
runs it without scikit-learn and the scikit-learn estimator over that engine.

Classes are named by import path and loaded on first use, so reading the registry imports no
algorithm (and the model file, which reads it, imports none of them either: no import cycle).
"""

from dataclasses import dataclass
from importlib import import_module

from ..errors import ModelFileError


@dataclass(frozen=True)
class Algorithm:
    name: str  # the CLI's --algorithm value
    tag: str  # the model file's "estimator" field (the public class name)
    engine_path: str  # "module:Class" of the engine (no scikit-learn)
    estimator_path: str  # "module:Class" of the scikit-learn estimator
    max_iter: int  # the default of max_iter: Lloyd iterations, or mini-batch passes
    summary: str
    k_param: str = "n_clusters"  # the engine's parameter for the number of segments
    own_init: bool = False  # the algorithm starts its own way: the CLI's --init is not its

    def make(self, k, **params):
        """An engine of ``k`` segments with the ``params`` it takes (a mixture has no init)."""
        from inspect import signature

        engine = self.engine()
        known = set(signature(engine.__init__).parameters) - ({"init"} if self.own_init else set())
        return engine(**{self.k_param: k}, **{n: v for n, v in params.items() if n in known})

    def engine(self):
        """The engine class: what the CLI fits and predicts with."""
        return _load(self.engine_path)

    def estimator(self):
        """The scikit-learn estimator class (imports scikit-learn)."""
        return _load(self.estimator_path)


ALGORITHMS = (
    Algorithm(
        name="lloyd",
        tag="KMeans",
        engine_path="fastseg.cluster.lloyd:LloydEngine",
        estimator_path="fastseg.cluster.estimators:KMeans",
        max_iter=300,
        summary="exact Lloyd k-means (Hamerly bounds keep its labels exact)",
    ),
    Algorithm(
        name="minibatch",
        tag="MiniBatchKMeans",
        engine_path="fastseg.cluster.minibatch:MiniBatchEngine",
        estimator_path="fastseg.cluster.estimators:MiniBatchKMeans",
        max_iter=100,
        summary="mini-batch k-means (a few passes over huge data)",
    ),
    Algorithm(
        name="gmm",
        tag="GaussianMixture",
        engine_path="fastseg.cluster.mixture:GaussianMixtureEngine",
        estimator_path="fastseg.cluster.mixture_estimator:GaussianMixture",
        max_iter=100,
        summary="Gaussian mixture by exact EM (full or diagonal covariances), soft assignments",
        k_param="n_components",
    ),
    Algorithm(
        name="ward",
        tag="Ward",
        engine_path="fastseg.cluster.ward:WardEngine",
        estimator_path="fastseg.cluster.ward_estimator:Ward",
        max_iter=1,
        summary="Ward's hierarchical clustering in two stages (micro-clusters, then Ward)",
        own_init=True,
    ),
    Algorithm(
        name="kprototypes",
        tag="KPrototypes",
        engine_path="fastseg.cluster.kprototypes:KPrototypes",
        estimator_path="fastseg.cluster.kprototypes:KPrototypes",
        max_iter=100,
        summary="k-prototypes: numbers and --categorical columns together, no one-hot (Huang 1998)",
    ),
    Algorithm(
        name="hdbscan",
        tag="HDBSCAN",
        engine_path="fastseg.cluster.density:HDBSCANEngine",
        estimator_path="fastseg.cluster.density_estimator:HDBSCAN",
        max_iter=1,  # (no iterations: one HDBSCAN run on a sample, one labelling pass)
        summary="HDBSCAN on a sample, extended by nearest point; finds k itself (--k ignored), "
        "noise its own segment",
        k_param="requested_k",  # HDBSCAN finds the number of segments: --k is ignored
        own_init=True,
    ),
)

NAMES = tuple(a.name for a in ALGORITHMS)


def by_name(name):
    """The algorithm the CLI calls ``name``."""
    for algorithm in ALGORITHMS:
        if algorithm.name == name:
            return algorithm
    raise ValueError(f"unknown algorithm {name!r}: use one of {', '.join(NAMES)}")


def by_tag(tag):
    """The algorithm a model file names (its "estimator" field)."""
    for algorithm in ALGORITHMS:
        if algorithm.tag == tag:
            return algorithm
    tags = ", ".join(a.tag for a in ALGORITHMS)
    raise ModelFileError(f"the model names an unknown estimator {tag!r} (known: {tags})")


def _load(path):
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)
