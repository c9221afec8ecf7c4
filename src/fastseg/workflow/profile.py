"""Segment profiles in business units: who is in each segment, and what sets it apart.

One streaming pass over the data labels each row with the model and keeps, per segment, exact
counts, sums, minima and maxima of every feature, the counts of each category of the
categorical columns, and a uniform sample of rows (the smallest random keys), from which the
medians come: exact for segments no larger than the sample, estimates above.
"""

import sys
import warnings

import numpy as np
import polars as pl

from .. import config
from ..cluster.assign import table_features
from ..cluster.engine import Engine, random_stream
from ..errors import DataError, DataWarning, FastsegError
from ..io.tables import TableReader
from .segments import aligned, number_text


def profile(model, data, *, categories=None, sample_size=20_000, random_state=0):
    """One row per segment of a fitted model on ``data`` (Parquet path(s) or a frame).

    ``model`` is a fastseg model, or a scikit-learn Pipeline ending in one whose other steps
    leave the columns as they are ("passthrough", ``FunctionTransformer()``): the profile is
    in the units of ``data``, so preprocessing belongs in the model (``scale=``, ``log1p=``).

    Columns: ``segment``, ``size``, ``share``; per feature ``<f>_mean``, ``<f>_median``,
    ``<f>_min``, ``<f>_max`` (original units) and ``<f>_z`` (the segment's mean in standard
    deviations of the whole population from the population's mean); per category
    ``<column>=<value>`` (the share of the segment's rows); ``apart`` (the features that set
    the segment apart, strongest first) and ``label`` (a short name made from them, e.g.
    "high income · low bandwidth gb year"). Rows with a missing feature are left out.
    ``categories`` names the categorical columns (default: every text, categorical or boolean
    column with at most ``config.profile_max_categories`` values).
    """
    return segment_stats(model, data, categories, sample_size, random_state).table()


def segment_stats(model, data, categories=None, sample_size=20_000, random_state=0):
    """The streaming pass behind ``profile``: per-segment totals and row samples."""
    model = fastseg_model(model)
    model._check_fitted()
    features = table_features(model)
    reader = TableReader(data, model._derivations())
    # One-hot columns label the rows but are not profiled: their categories' shares are.
    shown = model._plain_features()
    asked = categories is not None
    categories = _category_columns(reader.schema, features, categories, model.categorical)
    stats = SegmentStats(model.n_clusters, shown, categories, sample_size)
    stats.asked = set(categories) if asked else set()
    keys = random_stream(random_state)
    keep = list(dict.fromkeys([*shown, *categories]))
    for batch in model.iter_assign(reader, keep=keep, nulls="skip"):
        frame = batch.kept
        # rows with a missing feature are left out, filled by the model or not
        present = (
            ~batch.missing
            & frame.select(pl.all_horizontal(pl.col(shown).is_not_null())).to_series().to_numpy()
        )
        stats.n_left_out += batch.n_rows - int(present.sum())
        if not present.any():
            continue
        frame = frame.filter(pl.Series(present))
        rows = frame.select(pl.col(f).cast(pl.Float64) for f in shown).to_numpy(order="c")
        rows = rows.reshape(frame.height, len(shown))  # no plain feature: no columns, all rows
        stats.add(rows, batch.segment[present], frame.select(categories), keys)
    if stats.counts.sum() == 0:
        raise DataError(f"{reader.describe} has no rows without missing features to profile")
    return stats


def fastseg_model(model):
    """The fastseg model to profile with: ``model``, or the last step of a Pipeline whose
    other steps change nothing. Anything else is refused, saying what to pass instead."""
    from ..cluster.kprototypes import KPrototypes

    if isinstance(model, Engine | KPrototypes):
        return model
    pipeline = sys.modules.get("sklearn.pipeline")  # imported if model is a Pipeline
    if pipeline is None or not isinstance(model, pipeline.Pipeline):
        raise FastsegError(
            f"this needs a fitted fastseg model (fastseg.KMeans, fastseg.KPrototypes, "
            f"fastseg.load(path)...) or a Pipeline ending in one, not {_kind(model)}"
        )
    from sklearn.preprocessing import FunctionTransformer

    *before, (_, last) = model.steps
    for name, step in before:
        identity = isinstance(step, FunctionTransformer) and step.func is None
        if not (step is None or (isinstance(step, str) and step == "passthrough") or identity):
            raise DataError(
                f"profile describes segments in the units of the data it reads, but the "
                f"Pipeline's step '{name}' ({_kind(step)}) changes the columns before the "
                "model: fit the fastseg model alone on the raw data with the preprocessing "
                "inside it (scale='standard', log1p=[...]) and profile that model"
            )
    return fastseg_model(last)


def _kind(obj):
    """'str', 'sklearn.KMeans': what a wrong argument is, for an error message."""
    package = type(obj).__module__.partition(".")[0]
    return type(obj).__name__ if package == "builtins" else f"{package}.{type(obj).__name__}"


def _category_columns(schema, features, requested, categorical=None):
    """The columns whose category shares are shown: those requested, else the model's
    categorical columns and every other text, categorical or boolean column."""
    if requested is not None:
        unknown = [c for c in requested if c not in schema]
        if unknown:
            raise DataError(f"no such column(s) in the data: {', '.join(unknown)}")
        return list(requested)
    kinds = (pl.String, pl.Categorical, pl.Enum, pl.Boolean)
    found = [n for n, t in schema.items() if n not in features and isinstance(t, kinds)]
    return list(dict.fromkeys([*(categorical or []), *found]))


class SegmentStats:
    """Per-segment running totals and uniform row samples (``sample``: original units, one
    array per segment); ``table`` turns them into the profile."""

    def __init__(self, k, features, categories, sample_size):
        self.k, self.sample_size, self.features = k, sample_size, features
        d = len(features)
        self.counts = np.zeros(k, dtype=np.int64)
        self.shift = None  # sums are taken around the first rows' mean, for accurate stds
        self.sums = np.zeros((k, d))
        self.squares = np.zeros((k, d))
        self.low = np.full((k, d), np.inf)
        self.high = np.full((k, d), -np.inf)
        self.sample = [np.empty((0, d)) for _ in range(k)]
        self.sample_keys = [np.empty(0) for _ in range(k)]
        self.category_counts = {c: {} for c in categories}
        self.asked = set()  # categorical columns the user named (a skipped one is said)
        self.n_left_out = 0  # rows of the pass left out: a feature missing

    def add(self, rows, labels, category_frame, keys):
        if self.shift is None:
            self.shift = rows.mean(axis=0)
        centred = rows - self.shift
        self.counts += np.bincount(labels, minlength=self.k)
        row_keys = keys.random_sample(rows.shape[0])
        for c in range(self.k):
            mine = labels == c
            if not mine.any():
                continue
            part = centred[mine]
            self.sums[c] += part.sum(axis=0)
            self.squares[c] += (part * part).sum(axis=0)
            self.low[c] = np.minimum(self.low[c], rows[mine].min(axis=0))
            self.high[c] = np.maximum(self.high[c], rows[mine].max(axis=0))
            self._keep_sample(c, rows[mine], row_keys[mine])
        for column in category_frame.columns:
            counted = (
                pl.DataFrame({"segment": labels, "value": category_frame[column]})
                .group_by("segment", "value")
                .len()
            )
            seen = self.category_counts[column]
            for segment, value, n in counted.iter_rows():
                seen[(segment, value)] = seen.get((segment, value), 0) + n

    def _keep_sample(self, c, rows, row_keys):
        """The rows with the smallest random keys: a uniform sample of the segment so far."""
        keys = np.concatenate([self.sample_keys[c], row_keys])
        rows = np.concatenate([self.sample[c], rows])
        if keys.size > self.sample_size:
            keep = np.argpartition(keys, self.sample_size)[: self.sample_size]
            keys, rows = keys[keep], rows[keep]
        self.sample_keys[c], self.sample[c] = keys, rows

    def table(self):
        features = self.features
        n = self.counts.sum()
        present = self.counts > 0
        total = np.maximum(self.counts, 1)[:, None]
        mean = self.shift + self.sums / total
        pop_mean = self.shift + self.sums.sum(axis=0) / n
        pop_var = self.squares.sum(axis=0) / n - (self.sums.sum(axis=0) / n) ** 2
        pop_std = np.sqrt(np.maximum(pop_var, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(pop_std > 0, (mean - pop_mean) / pop_std, 0.0)
        columns = {
            "segment": np.arange(self.k)[present],
            "size": self.counts[present],
            "share": self.counts[present] / n,
        }
        for j, f in enumerate(features):
            medians = [np.median(s[:, j]) if s.shape[0] else np.nan for s in self.sample]
            columns[f"{f}_mean"] = mean[present, j]
            columns[f"{f}_median"] = np.asarray(medians)[present]
            columns[f"{f}_min"] = self.low[present, j]
            columns[f"{f}_max"] = self.high[present, j]
            columns[f"{f}_z"] = z[present, j]
        for column, seen in self.category_counts.items():
            values = sorted({v for _, v in seen}, key=lambda v: (v is None, str(v)))
            if len(values) > config.profile_max_categories:  # an id: not a share per value
                if column in self.asked:
                    warnings.warn(
                        f"the profile leaves out the breakdown of '{column}': it has "
                        f"{len(values):,} values, more than {config.profile_max_categories} "
                        "(an id, or a number?)",
                        DataWarning,
                        stacklevel=2,
                    )
                continue
            for value in values:
                shares = [seen.get((c, value), 0) / max(self.counts[c], 1) for c in range(self.k)]
                columns[f"{column}={value}"] = np.asarray(shares)[present]
        apart = [what_sets_apart(z[c], features) for c in np.flatnonzero(present)]
        columns["apart"] = [", ".join(a) for a in apart]
        columns["label"] = [" · ".join(a[:3]) if a else "typical" for a in apart]
        return pl.DataFrame(columns)


def what_sets_apart(z, features):
    """'high income', 'low age', ... for the features whose z-score is notable, strongest first."""
    order = np.argsort(-np.abs(z), kind="stable")
    return [
        f"{'high' if z[j] > 0 else 'low'} {features[j].replace('_', ' ')}"
        for j in order
        if abs(z[j]) >= config.notable_z
    ]


FORMATS = ("table", "csv", "json", "markdown")


def format_profile(table, how="table"):
    """The profile as text: ``table`` (each segment's label, then a column per segment: means
    with z-scores, medians, category shares), ``markdown`` (the same), ``csv`` or ``json``
    (every column of the profile)."""
    if how not in FORMATS:
        raise DataError(f"format {how!r}: use one of {', '.join(FORMATS)}")
    if how == "csv":
        return table.write_csv()
    if how == "json":
        return table.write_json()
    rows = [["", *[f"segment {s}" for s in table["segment"]]]]
    rows.append(["size", *[f"{v:,}" for v in table["size"]]])
    rows.append(["share", *[f"{v:.1%}" for v in table["share"]]])
    if how == "markdown":
        rows.append(["label", *table["label"]])
    for name in table.columns:
        if name.endswith("_mean"):
            f = name[: -len("_mean")]
            rows.append(
                [
                    f"{f} mean (z)",
                    *[
                        f"{number_text(m)} ({z:+.1f})"
                        for m, z in zip(table[name], table[f"{f}_z"], strict=True)
                    ],
                ]
            )
            rows.append([f"{f} median", *[number_text(v) for v in table[f"{f}_median"]]])
        elif "=" in name:
            rows.append([name, *[f"{v:.1%}" for v in table[name]]])
    if how == "markdown":
        lines = ["| " + " | ".join(r) + " |" for r in rows]
        lines.insert(1, "|" + "---|" * len(rows[0]))
        return "\n".join(lines)
    labels = [
        f"segment {s}: {label}" for s, label in zip(table["segment"], table["label"], strict=True)
    ]
    return "\n".join(labels) + "\n\n" + aligned(rows)
