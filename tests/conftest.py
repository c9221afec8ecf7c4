"""Fixtures shared by the test folders. Each folder mirrors a package of ``src/fastseg``
(io, preprocess, cluster, metrics, workflow, cli, datasets); ``naive.py`` beside this file
holds the NumPy references of the kernels (this folder is on ``sys.path`` for them)."""

import numpy as np
import polars as pl
import pytest
from hypothesis import settings
from sklearn.datasets import make_blobs

from fastseg.datasets import write_customers

# The property tests draw the same examples on every run and keep no database: a failure in CI
# is one anyone can rerun, never a lucky draw (as the README says).
settings.register_profile("fastseg", derandomize=True, database=None)
settings.load_profile("fastseg")


@pytest.fixture(scope="session")
def customers(tmp_path_factory):
    """20,000 generated customers (hidden segments, a few nulls) in row groups of 5,000."""
    path = tmp_path_factory.mktemp("customers") / "customers.parquet"
    write_customers(path, 20_000, seed=3, row_group_size=5_000)
    return path


@pytest.fixture(scope="session")
def blobs32():
    """Float32 blobs (3,000 rows, 3 features, 4 centres): small, quick to fit."""
    X, _ = make_blobs(3000, n_features=3, centers=4, random_state=3)
    return X.astype(np.float32)


@pytest.fixture(scope="session")
def blobs_frame(blobs32):
    """``blobs32`` as a polars frame with columns a, b, c."""
    return pl.DataFrame(blobs32, schema=["a", "b", "c"])
