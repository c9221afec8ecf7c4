"""fastseg: out-of-core customer segmentation with Polars-streamed Parquet and Numba k-means."""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from .errors import DataError, FastsegError, ModelFileError
from .modelfile import load

try:
    __version__ = version("fastseg")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "KMeans",
    "MiniBatchKMeans",
    "load",
    "FastsegError",
    "DataError",
    "ModelFileError",
    "__version__",
]

# The estimators import scikit-learn (about a second); the CLI never needs them.
_ESTIMATORS = ("KMeans", "MiniBatchKMeans")


def __getattr__(name):
    if name in _ESTIMATORS:
        return getattr(import_module(".estimators", __name__), name)
    raise AttributeError(f"module 'fastseg' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_ESTIMATORS})
