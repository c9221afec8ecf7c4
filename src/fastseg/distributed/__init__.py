"""The Dask backend: the same kernels on every worker, the same model whatever the number of
workers.

dask.distributed runs fastseg's own tasks (``tasks``): each reads one fragment with the one
reader, preprocesses it as the local decode pass does and returns small arrays, which the
client (``fit``) merges in fragment order. Needs the optional ``dask`` extra:
``pip install 'fastseg[dask]'``.
"""

from ..errors import FastsegError


def require_dask():
    """Import dask.distributed, or say how to install it."""
    try:
        import dask.dataframe  # noqa: F401
        import distributed
    except ImportError:
        raise FastsegError(
            "the Dask backend needs the dask extra: pip install 'fastseg[dask]'"
        ) from None
    return distributed


def is_dask_frame(X):
    """True for a Dask DataFrame (without importing Dask when it is not loaded)."""
    import sys

    if "dask.dataframe" not in sys.modules:
        return False
    import dask.dataframe as dd

    return isinstance(X, dd.DataFrame)


def get_client(client=None):
    """The client to run on: the one given, else the current default one, else an error."""
    distributed = require_dask()
    if client is not None:
        return client
    try:
        return distributed.get_client()
    except ValueError:
        raise FastsegError(
            "no Dask client: pass client=, or start one first (distributed.Client(...)); "
            "the CLI takes --workers N or --scheduler tcp://host:port"
        ) from None
