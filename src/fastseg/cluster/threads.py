"""Threads for the Numba kernels, and none for BLAS beside them."""

from contextlib import contextmanager

import numba
from threadpoolctl import threadpool_limits


@contextmanager
def thread_limit(n_threads):
    """Run Numba kernels on ``n_threads`` threads and BLAS on one (no oversubscription)."""
    old = numba.get_num_threads()
    n = numba.config.NUMBA_NUM_THREADS if n_threads is None else n_threads
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(old)
