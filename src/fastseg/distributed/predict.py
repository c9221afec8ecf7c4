"""Labels on a Dask cluster: a lazy Dask Series for a Dask DataFrame, or a Parquet data set
written one file per fragment by the workers, each file atomically; nothing is gathered.
The labels are those of the local ``predict`` (the same model, the same assign path)."""

import os

import numpy as np

from .. import config
from ..errors import FastsegError
from ..io.output import Outputs
from ..io.tables import TableReader
from . import get_client, tasks
from .fit import FragmentPlan


def predict_frame(model, frame, columns=None):
    """model.predict on every partition of a Dask DataFrame: a lazy int32 Dask Series."""
    import pandas as pd

    meta = pd.Series(dtype=np.int32, name="segment")
    return frame.map_partitions(_predict_partition, model, columns, meta=meta)


def _predict_partition(partition, model, columns):
    import pandas as pd

    tasks._warm_once()
    labels = model.predict(partition, columns=columns) if len(partition) else []
    return pd.Series(np.asarray(labels, dtype=np.int32), index=partition.index, name="segment")


def write_label_parts(model, data, folder, *, client=None, keep=None, overwrite=False):
    """Write every input row (or the ``keep`` columns) plus its segment into ``folder`` as
    part-NNNNN.parquet files, one per fragment, each by a worker; returns (rows written,
    rows without a segment)."""
    client = get_client(client)
    check_folder(folder, overwrite)
    plan = FragmentPlan(data, client, config.batch_size)
    if plan.parts is not None:
        raise FastsegError("labels of a Dask DataFrame: use model.predict(frame) (lazy)")
    os.makedirs(folder, exist_ok=True)
    import dask

    call = dask.delayed(_write_part, pure=False)
    jobs = [call(model, data, f, os.path.abspath(folder), keep) for f in plan.fragments]
    counts = client.gather(client.compute(jobs))
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def check_folder(folder, overwrite):
    """Fail before any work if ``folder`` cannot take the label files."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise FastsegError(f"'{folder}' is a file: with a Dask cluster --out names a folder")
    if os.path.isdir(folder) and os.listdir(folder) and not overwrite:
        raise FastsegError(f"'{folder}' already holds files: choose another, or add --overwrite")


def _write_part(model, data, fragment, folder, keep):
    from ..workflow.labels import write_labels

    tasks._warm_once()
    reader = TableReader(data, model._derivations()).within(fragment.start, fragment.stop)
    path = os.path.join(folder, f"part-{fragment.index:05d}.parquet")
    with Outputs(overwrite=True) as outputs:
        counts = write_labels(model, reader, path, keep=keep, outputs=outputs)
        outputs.publish()
    return counts
