"""Synthetic data sets: customers with hidden true segments, for tests, demos and benchmarks."""

from .customers import *  # noqa: F403 (its __all__: the generator's public names)
from .customers import __all__  # noqa: F401
