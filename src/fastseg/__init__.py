"""fastseg: out-of-core customer segmentation with Polars-streamed Parquet and Numba k-means."""

from importlib import import_module

from .errors import DataError, FastsegError, ModelFileError

__all__ = [
    "KMeans",
    "MiniBatchKMeans",
    "GaussianMixture",
    "Ward",
    "KPrototypes",
    "HDBSCAN",
    "select_k",
    "profile",
    "drift",
    "explain",
    "load",
    "FastsegError",
    "DataError",
    "ModelFileError",
    "__version__",
]

# Imported on first use: the estimators import scikit-learn (about a second), which the CLI
# never needs, and everything here loads Numba. Even the version (importlib.metadata: 20 ms)
# waits, so the ``fastseg`` command has its Ctrl-C handler in place almost at once.
_LAZY = {
    "__version__": "._version",
    "load": ".cluster.modelfile",
    "KMeans": ".cluster.estimators",
    "MiniBatchKMeans": ".cluster.estimators",
    "GaussianMixture": ".cluster.mixture_estimator",
    "Ward": ".cluster.ward_estimator",
    "KPrototypes": ".cluster.kprototypes",
    "HDBSCAN": ".cluster.density_estimator",
    "select_k": ".workflow.select_k",
    "profile": ".workflow.profile",
    "drift": ".workflow.drift",
    "explain": ".workflow.explain",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'fastseg' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY})
