"""What the dashboard shows, computed once, before the app starts, by streaming passes.

Streamlit sends every table it shows to the browser through a websocket (a message is capped
at 200 MB), so the app never reads the rows themselves: only these aggregates, whose size
follows k, the features and the sample, not the data. They are the segments (name, size,
share, colour), the profile (``workflow.profile``), the z-scores, key metrics by segment, a
uniform sample of rows with their segment, distance to its centre and 2-D PCA coordinates
(as the report's scatter), and with a reference period the drift (``workflow.drift``).
Saved to a folder as one JSON file and a few Parquet files, published together.
"""

import json
import os

import numpy as np
import polars as pl

from .._version import __version__
from ..cluster.engine import random_stream
from ..errors import DataError
from ..io.output import Outputs
from ..io.tables import TableReader
from ..workflow.drift import DriftResult, DriftRules, drift
from ..workflow.profile import fastseg_model, segment_stats
from ..workflow.report import pca_2d, segment_colours, segment_names, source_text

FORMAT, FORMAT_VERSION = "fastseg-dashboard", 1
META = "dashboard.json"  # written last: its presence says the folder is complete
TABLES = ("segments", "profile", "zscores", "metrics", "sample")
SAMPLE_COLUMNS = ("segment", "pc1", "pc2", "distance")  # then the features


def compute_aggregates(model, data, reference=None, sample_rows=5000, seed=0):
    """Everything the dashboard shows of ``model``'s segments in ``data``, as a dict.

    ``model``: a fitted fastseg model or a model file. ``data``: Parquet/CSV path(s) or a
    frame. ``reference``: the data of an earlier period; ``data`` is then the new one and the
    dict holds its drift (``drift(model, data, reference=reference).to_dict()``).
    ``sample_rows``: rows of the uniform sample the scatter and the filters work on.

    Keys: ``meta`` (a dict: data, k, features, rows, sample size, colours), ``drift`` (a dict
    or None) and the polars frames ``segments``, ``profile``, ``zscores``, ``metrics``,
    ``sample``. Memory follows a batch and the samples, whatever the rows.
    """
    model = _fitted(model)
    if sample_rows < 1:
        raise DataError(f"the sample needs at least one row, not {sample_rows}")
    later = None  # measured first, so that its errors come before the other passes
    if reference is not None:
        later = drift(model, data, reference=reference, seed=seed).to_dict()
    stats = segment_stats(model, data, random_state=seed)
    table = stats.table()
    features = stats.features
    passed = _distance_and_sample(model, data, features, sample_rows, seed)
    xy, explained = pca_2d(passed.rows)
    colours = segment_colours(model.n_clusters)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fastseg_version": __version__,
        "data": source_text(data),
        "reference": None if reference is None else source_text(reference),
        "k": int(model.n_clusters),
        "features": list(features),
        "rows": int(stats.counts.sum()),
        "left_out": int(stats.n_left_out),
        "sample_rows": int(passed.rows.shape[0]),
        "explained": [float(e) for e in explained],
        "colours": colours,
    }
    return {
        "meta": meta,
        "drift": later,
        "segments": _segments(table, colours),
        "profile": table,
        "zscores": table.select("segment", *[pl.col(f"{f}_z").alias(f) for f in features]),
        "metrics": _metrics(table, features, passed),
        "sample": _sample_frame(passed, xy, features),
    }


def _fitted(model):
    if isinstance(model, str | os.PathLike):
        from ..cluster.modelfile import load_engine

        return load_engine(model)
    model = fastseg_model(model)
    model._check_fitted()
    return model


def _segments(table, colours):
    """A row per segment with rows: its number, name ('0: high income · low age'), label,
    size, share and colour (the report's)."""
    names = segment_names(table)
    segments = [int(s) for s in table["segment"]]
    return table.select("segment", "label", "size", "share").with_columns(
        name=pl.Series([names[s] for s in segments], dtype=pl.String),
        colour=pl.Series([colours[s] for s in segments], dtype=pl.String),
    )


def _metrics(table, features, passed):
    """Key metrics by segment: size, share, mean distance to the centre and inertia per row
    (in the model's scaled space), the mean of each feature."""
    segments = table["segment"].to_numpy()
    rows = np.maximum(passed.counts[segments], 1)
    return table.select("segment", "size", "share").with_columns(
        mean_distance=passed.distances[segments] / rows,
        inertia_per_row=passed.squares[segments] / rows,
        **{f"{f}_mean": table[f"{f}_mean"] for f in features},
    )


def _sample_frame(passed, xy, features):
    columns = {
        "segment": passed.segment,
        "pc1": xy[:, 0],
        "pc2": xy[:, 1],
        "distance": np.sqrt(passed.squared),
    }
    frame = pl.DataFrame(columns)
    if not features:
        return frame
    rows = pl.DataFrame(passed.rows, schema=list(features), orient="row")
    return pl.concat([frame, rows], how="horizontal")


class _Pass:
    """Per segment, rows and sums of distances and squared distances to its centre; and a
    uniform sample of the rows (those with the smallest random keys), in key order."""

    def __init__(self, k, d, size):
        self.size = size
        self.counts = np.zeros(k, dtype=np.int64)
        self.distances, self.squares = np.zeros(k), np.zeros(k)
        self.keys, self.rows = np.empty(0), np.empty((0, d))
        self.segment, self.squared = np.empty(0, dtype=np.int32), np.empty(0)

    def add(self, rows, segment, squared, keys):
        k = self.counts.shape[0]
        self.counts += np.bincount(segment, minlength=k)
        self.squares += np.bincount(segment, weights=squared, minlength=k)
        self.distances += np.bincount(segment, weights=np.sqrt(squared), minlength=k)
        parts = [(self.keys, keys), (self.rows, rows), (self.segment, segment)]
        keys, rows, segment = (np.concatenate(p) for p in parts)
        squared = np.concatenate([self.squared, squared])
        if keys.size > self.size:
            keep = np.argpartition(keys, self.size)[: self.size]
            keys, rows, segment, squared = keys[keep], rows[keep], segment[keep], squared[keep]
        self.keys, self.rows, self.segment, self.squared = keys, rows, segment, squared

    def sorted(self):
        """Itself, the sample in key order: its first n rows are a uniform sample too."""
        order = np.argsort(self.keys, kind="stable")
        self.keys, self.rows = self.keys[order], self.rows[order]
        self.segment, self.squared = self.segment[order], self.squared[order]
        return self


def _distance_and_sample(model, data, features, sample_rows, seed):
    """A streaming pass over the rows the profile describes (no plain feature missing)."""
    reader = TableReader(data, model._derivations())
    found = _Pass(model.n_clusters, len(features), sample_rows)
    keys = random_stream(seed)
    for batch in model.iter_assign(reader, keep=features, nulls="skip"):
        present = ~batch.missing
        if features:  # a gap the model fills is still left out, as in the profile
            frame = batch.kept
            filled = frame.select(pl.all_horizontal(pl.col(features).is_not_null()))
            present &= filled.to_series().to_numpy()
        n = int(present.sum())
        if n == 0:
            continue
        if features:
            frame = frame.filter(pl.Series(present))
            rows = frame.select(pl.col(f).cast(pl.Float64) for f in features).to_numpy()
        else:
            rows = np.empty((n, 0))
        found.add(rows, batch.segment[present], batch.distance[present], keys.random_sample(n))
    return found.sorted()


# ----- the folder -----------------------------------------------------------------------
def save_aggregates(agg, folder):
    """Write ``agg`` to ``folder`` (made if missing): ``dashboard.json`` and a Parquet file
    per table, all published together (``io.output.Outputs``) or none. Returns ``folder``."""
    os.makedirs(folder, exist_ok=True)
    with Outputs(overwrite=True) as outputs:
        for name in TABLES:
            path = os.path.join(folder, f"{name}.parquet")
            with outputs.file(path) as tmp, open(tmp, "wb") as f:
                agg[name].write_parquet(f)
        doc = {**agg["meta"], "drift": agg["drift"]}
        with outputs.file(os.path.join(folder, META)) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(doc, f, default=_plain)
        outputs.publish()
    return folder


def _plain(value):
    """JSON for a NumPy scalar or array the drift measures may hold."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def load_aggregates(folder):
    """The dict ``save_aggregates`` wrote to ``folder``; a clear error for any other folder."""
    path = os.path.join(folder, META)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise DataError(
            f"'{folder}' holds no dashboard data ({META} is missing): make it with "
            "fastseg.dashboard.aggregates.save_aggregates"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(f"'{path}' is damaged (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DataError(f"'{path}' is not fastseg dashboard data")
    if doc.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"'{path}' has dashboard format version {doc.get('format_version')}; this fastseg "
            f"reads version {FORMAT_VERSION}: compute the aggregates again"
        )
    agg = {"drift": doc.pop("drift", None), "meta": doc}
    for name in TABLES:
        agg[name] = pl.read_parquet(os.path.join(folder, f"{name}.parquet"))
    return agg


def drift_result(doc):
    """A ``DriftResult`` back from its ``to_dict()`` (for ``workflow.report_drift``'s plots)."""
    own = {"verdict", "reasons", "rows", "features", "segments", "rules", "migration"}
    return DriftResult(
        verdict=doc["verdict"],
        reasons=list(doc["reasons"]),
        rows=dict(doc["rows"]),
        features=doc["features"],
        segments=doc["segments"],
        summary={key: value for key, value in doc.items() if key not in own},
        rules=DriftRules.of(doc["rules"]),
        migration=doc.get("migration"),
    )
