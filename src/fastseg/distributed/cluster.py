"""The CLI's way onto a Dask cluster: a running one (``--scheduler``) or a LocalCluster of
worker processes started for the run (``--workers N``)."""

import os
from contextlib import contextmanager

from ..errors import FastsegError
from . import require_dask


@contextmanager
def connected(workers=None, scheduler=None, persist=False, say=print):
    """Yield the ``fit`` arguments for Dask ({"client", "persist"}), or None to run locally."""
    if workers is None and scheduler is None:
        if persist:
            raise FastsegError("--persist keeps rows on Dask workers: add --workers or --scheduler")
        yield None
        return
    if workers is not None and scheduler is not None:
        raise FastsegError("give --workers (a cluster for this run) or --scheduler, not both")
    distributed = require_dask()
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout="10s")
        except OSError as exc:
            raise FastsegError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            n = len(client.scheduler_info()["workers"])
            say(f"on the Dask cluster at {scheduler}: {n} workers")
            yield {"client": client, "persist": persist}
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    with (
        distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            dashboard_address=None,
            # Polars and Numba size their thread pools at import: as many as the worker has
            env={"POLARS_MAX_THREADS": str(threads), "NUMBA_NUM_THREADS": str(threads)},
        ) as local,
        distributed.Client(local) as client,
    ):
        processes = "process" if workers == 1 else "processes"
        say(f"on a local Dask cluster of {workers} worker {processes}, {threads} thread(s) each")
        yield {"client": client, "persist": persist}
