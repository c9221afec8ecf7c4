"""The model a server answers with, and the watcher that swaps in a new model file.

A request reads ``ModelHolder.current`` once and uses that ``Served`` to the end, so a swap
(one reference replaced, the new model built and warmed beforehand, in a thread) is atomic:
no request sees half of a model. A new file that does not load leaves the old model serving
and says why in one line on stderr.
"""

import math
import os
import sys

import anyio
import anyio.to_thread
import msgspec
import numpy as np

from ..cluster.modelfile import load_engine
from ..cluster.record import RecordAssigner
from ..errors import DataError, FastsegError, ModelFileError
from ..workflow.profile import what_sets_apart  # the profile's labeller: one wording
from ..workflow.segments import centers_in_original_units


class Served:
    """One loaded model, ready to answer: the engine, what a record must hold, and the
    ``GET /model`` document, encoded once."""

    def __init__(self, path, engine, stamp):
        self.path, self.engine, self.stamp = path, engine, stamp
        self.k = int(engine.n_clusters)
        assigner = RecordAssigner(engine)
        self.fields = list(assigner.fields)
        self.categorical = frozenset(assigner.levels)
        self.description = msgspec.json.encode(describe(engine, assigner, path))

    def assign(self, record):
        """The answer for one customer (a DataError names the field; a list item that is
        not an object is a customer too, and refused as one)."""
        try:
            if isinstance(record, dict):
                return self.engine.assign(record)  # (the assigner's quicker path for one)
            return self.engine.assign([record])[0]
        except (TypeError, OverflowError):  # values the assigner does not expect (see _culprit)
            culprit = _culprit(record, self.fields, self.categorical)
            raise DataError(culprit or "cannot read this customer") from None

    def assign_many(self, records):
        """The answers for a list of customers, in order; an error says which item."""
        if not records:
            return []  # (the assigner wants at least one row)
        try:
            return self.engine.assign(records)
        except (DataError, TypeError, OverflowError):
            for i, record in enumerate(records):  # (only on failure: find the item)
                try:
                    self.assign(record)
                except DataError as exc:
                    raise ItemError(i, f"item {i}: {exc}") from None
            raise


class ItemError(DataError):
    """A bad customer in a list: ``item`` is its index (from 0)."""

    def __init__(self, item, message):
        super().__init__(message)
        self.item = item


def _culprit(record, fields, categorical):
    """What is wrong with a record the assigner failed on without saying: an array or an
    object as a value, or a whole number beyond a float's range."""
    if not isinstance(record, dict):
        return None
    for name in fields:
        value = record.get(name)
        if isinstance(value, list | dict):
            kind = "an array" if isinstance(value, list) else "an object"
            wanted = "one of its levels" if name in categorical else "a number"
            return f"field '{name}' must be {wanted}, not {kind}"
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and abs(value) > sys.float_info.max
        ):
            return f"field '{name}' is out of range: give a number within ±1.8e308"
    return None


def file_stamp(path):
    """(mtime_ns, size, inode): any write or replacement of the file changes it."""
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def load_served(path):
    """Load and warm a model file (a FastsegError says why it cannot be served)."""
    try:
        stamp = file_stamp(path)
    except FileNotFoundError:
        raise ModelFileError(f"no such model file: '{path}'") from None
    engine = load_engine(path)
    served = Served(path, engine, stamp)
    try:  # the first assign builds the record assigner and loads the kernel: not on a request
        engine.assign(warm_record(engine, served.fields))
    except DataError:
        pass  # (derived inputs without a sensible value: the assigner is built all the same)
    return served


def warm_record(engine, fields):
    """A customer at the first centre: a valid record for any model."""
    pre = engine.preprocessor_
    names = pre.feature_names or [f"x{j}" for j in range(pre.n_features)]
    centre = dict(zip(names, centers_in_original_units(engine)[0].tolist(), strict=True))
    levels = dict(pre.levels or {}) if pre.one_hot() else {}
    record = {}
    for name in fields:
        if name in levels:
            record[name] = levels[name][0]
        else:
            value = centre.get(name, 1.0)
            record[name] = value if math.isfinite(value) else 1.0
    return record


def describe(engine, assigner, path):
    """What ``GET /model`` says: the fields a customer holds and each segment's size, label
    and centre in business units."""
    pre = engine.preprocessor_
    names = pre.feature_names or [f"x{j}" for j in range(pre.n_features)]
    centres = centers_in_original_units(engine)
    reference = getattr(engine, "reference_", None)
    rows = None if reference is None else reference.segment_rows
    labels = segment_labels(engine, centres, names)
    features = [
        {"name": name, "kind": "category", "levels": list(assigner.levels[name])}
        if name in assigner.levels
        else {"name": name, "kind": "number"}
        for name in assigner.fields
    ]
    return {
        "file": os.path.basename(path),
        "estimator": engine.estimator_name,
        "k": int(engine.n_clusters),
        "fields": list(assigner.fields),
        "features": features,
        "nulls": "filled as in the fit" if assigner.fills else "refused",
        "segments": [
            {
                "segment": s,
                "label": labels[s],
                "rows": None if rows is None else int(rows[s]),
                "share": None if rows is None else float(rows[s] / max(1, rows.sum())),
                "centre": dict(zip(names, centres[s].tolist(), strict=True)),
            }
            for s in range(int(engine.n_clusters))
        ],
    }


def segment_labels(engine, centres, names):
    """'high income · low age' per segment, worded as ``fastseg profile`` words them, from
    each centre's distance to the fitted data's mean in its standard deviations (the model
    file's reference profile); None for every segment of a model saved without one."""
    reference = getattr(engine, "reference_", None)
    if reference is None:
        return [None] * centres.shape[0]
    plain = engine.preprocessor_.plain_features()
    stats = {f.name: f for f in reference.numeric}
    shown = [n for n in plain if n in stats]
    columns = [names.index(n) for n in shown]
    mean = np.array([stats[n].mean for n in shown])
    std = np.array([stats[n].std for n in shown])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > 0, (centres[:, columns] - mean) / std, 0.0)
    labels = []
    for row in z:
        apart = what_sets_apart(row, shown)
        labels.append(" · ".join(apart[:3]) if apart else "typical")
    return labels


class ModelHolder:
    """The served model, one reference replaced whole, and the watcher of its file."""

    def __init__(self, path, poll_seconds=1.0, log=None):
        self.path, self.poll_seconds = path, poll_seconds
        self.current = load_served(path)
        self.seen = self.current.stamp  # the stamp last tried, loaded or not
        self.log = log or _to_stderr

    async def watch(self):
        """Poll the file's stamp; load a changed file in a thread, then swap it in."""
        while True:
            await anyio.sleep(self.poll_seconds)
            await self.check()

    async def check(self):
        """One look at the file: a changed one is loaded, and served if it loads."""
        try:
            stamp = file_stamp(self.path)
        except OSError as exc:
            if self.seen is not None:
                self.log(f"cannot read the model file ({exc.strerror}): the old model still serves")
            self.seen = None
            return
        if stamp == self.seen:
            return
        self.seen = stamp
        try:
            served = await anyio.to_thread.run_sync(load_served, self.path)
        except Exception as exc:  # whatever the file holds, the old model keeps serving
            reason = " ".join(str(exc).split()) or type(exc).__name__
            if not isinstance(exc, FastsegError | OSError):
                reason = f"{type(exc).__name__}: {reason}"
            self.log(f"the new model file was not loaded, the old model still serves: {reason}")
            return
        self.seen = served.stamp  # (the file may have changed again while it loaded)
        self.current = served
        self.log(f"loaded the new model file ({served.k} segments)")


def _to_stderr(text):
    print(f"fastseg serve: {text}", file=sys.stderr, flush=True)
