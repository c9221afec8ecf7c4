"""fastseg: out-of-core customer segmentation with Polars-streamed Parquet and Numba k-means."""

from importlib.metadata import PackageNotFoundError, version

from .errors import DataError, FastsegError, ModelFileError
from .kmeans import KMeans
from .minibatch import MiniBatchKMeans
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
