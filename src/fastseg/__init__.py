"""fastseg: out-of-core customer segmentation with Polars-streamed Parquet and Numba k-means."""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from .cluster.modelfile import load
from .errors import DataError, FastsegError, ModelFileError

try:
    __version__ = version("fastseg")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

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
