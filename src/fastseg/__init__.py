"""fastseg: out-of-core customer segmentation with Polars-streamed Parquet and Numba k-means."""

from importlib import import_module

from ._version import __version__
from .cluster.modelfile import load
from .errors import DataError, FastsegError, ModelFileError

__all__ = [
    "KMeans",
    "MiniBatchKMeans",
    "select_k",
    "profile",
    "load",
    "FastsegError",
    "DataError",
    "ModelFileError",
    "__version__",
]

# Imported on first use: the estimators import scikit-learn (about a second), which the CLI
# never needs, and everything here loads Numba.
_LAZY = {
    "KMeans": ".cluster.estimators",
    "MiniBatchKMeans": ".cluster.estimators",
    "select_k": ".workflow.select_k",
    "profile": ".workflow.profile",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'fastseg' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY})
