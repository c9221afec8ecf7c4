"""Threads for the Numba kernels, and none for BLAS beside them."""

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numba
from threadpoolctl import threadpool_limits

_pool = None  # (the process it belongs to, its executor): made on first use


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


def run_blocks(kernel, n_blocks, *args):
    """Run ``kernel(first, last, *args)``, a ``nogil`` Numba kernel over blocks [first, last),
    on ``n_blocks`` blocks split into one contiguous range per thread (as many as Numba's,
    which ``thread_limit`` sets). Each block writes only its own outputs, so the split never
    changes the result; one block, or one thread, runs on the calling thread alone."""
    threads = min(numba.get_num_threads(), n_blocks)
    if threads <= 1:
        kernel(0, n_blocks, *args)
        return
    edges = [n_blocks * t // threads for t in range(threads + 1)]
    pool = _executor()
    others = [pool.submit(kernel, edges[t], edges[t + 1], *args) for t in range(1, threads)]
    try:
        kernel(edges[0], edges[1], *args)
    finally:
        for part in others:
            part.result()


def _executor():
    """The worker threads (a forked child makes its own: its parent's threads are not there)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        workers = max(1, numba.config.NUMBA_NUM_THREADS - 1)
        _pool = (os.getpid(), ThreadPoolExecutor(workers, thread_name_prefix="fastseg"))
    return _pool[1]
