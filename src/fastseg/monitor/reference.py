"""The reference profile: what a model keeps of the data it was fitted on, so that drift needs
only the model and the new data.

Per numeric feature: the share of missing values, the range, mean and standard deviation,
the decile edges and the share of rows in each bin, and 200 quantiles (Wasserstein, KS). Per
categorical column: the share of each level and of missing values. Per segment: its share
and rows, its mean squared distance to the centre and quantiles of the distance (the 99th
marks a new customer as out of distribution).

Everything comes from a uniform sample of ``config.reference_rows`` input rows (every row
below that) at fixed positions, drawn while the fit reads its input, and from exact counts:
rows, missing values, minimum and maximum, and the segment sizes. A sample at fixed
positions merges exactly (a Dask fit gathers each fragment's rows of it), so the profile is
the same for any batch size, thread count or number of workers.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from numba import get_num_threads

from ..preprocess.categories import level_name
from . import measures, radix

DISTANCE_LEVELS = (0.5, 0.9, 0.95, 0.99)  # quantiles of each segment's distances kept
OUT_OF_DISTRIBUTION = 0.99  # farther than this quantile of the segment's distances: new ground
RADIX_MIN = 1 << 16  # values from which a column is sorted by ``radix`` (1 ms at 250,000)
MISSING = -1  # a categorical code: no value
UNSEEN = -2  # ... a level the reference never saw


@dataclass
class PeriodSample:
    """What a period's data gives a profile: exact counts and a uniform sample of its rows.

    ``numeric``: {feature: sampled values, NaN where missing}; ``codes``: {categorical
    column: sampled level indices, MISSING/UNSEEN}; ``segment``/``distance``: each sampled
    row's segment (-1: none) and Euclidean distance to its centre. ``missing``, ``low``,
    ``high``: exact per numeric feature over every row; ``level_counts``: exact per
    categorical column (levels, then unseen, then missing) or None (from the sample);
    ``segment_rows``: exact rows per segment, or None (from the sample).
    """

    rows: int
    numeric: dict
    codes: dict
    levels: dict
    segment: np.ndarray
    distance: np.ndarray
    missing: dict
    low: dict
    high: dict
    level_counts: dict | None = None
    segment_rows: np.ndarray | None = None


@dataclass
class NumericReference:
    name: str
    missing_share: float
    low: float
    high: float
    mean: float
    std: float
    edges: np.ndarray
    shares: np.ndarray  # per bin of ``edges``, then the missing share
    quantiles: np.ndarray


@dataclass
class CategoricalReference:
    name: str
    levels: list
    shares: np.ndarray  # per level, then unseen (0 in a reference), then missing


@dataclass
class ReferenceProfile:
    rows: int
    sample_rows: int
    numeric: list = field(default_factory=list)
    categorical: list = field(default_factory=list)
    segment_rows: np.ndarray = None
    mean_sq_distance: np.ndarray = None
    distance_quantiles: np.ndarray = None  # segments x DISTANCE_LEVELS

    @property
    def segment_shares(self):
        return measures.shares(self.segment_rows)

    @property
    def ood_distance(self):
        """Per segment, the distance beyond which a row is out of distribution."""
        return self.distance_quantiles[:, DISTANCE_LEVELS.index(OUT_OF_DISTRIBUTION)]

    @property
    def inertia_per_row(self):
        return float(self.segment_shares @ self.mean_sq_distance)

    def feature(self, name):
        return next(f for f in self.numeric + self.categorical if f.name == name)

    @classmethod
    def from_sample(cls, sample, k):
        """The profile of a period's ``PeriodSample`` for a model of ``k`` segments."""
        profile = cls(int(sample.rows), int(sample.segment.shape[0]))
        present = sample.segment >= 0
        segment, distance = sample.segment[present], sample.distance[present]
        with ThreadPoolExecutor(get_num_threads()) as pool:  # (the sorts release the GIL)
            distances = pool.submit(_distance_figures, segment, distance, k)
            profile.numeric = list(pool.map(partial(_numeric, sample=sample), sample.numeric))
            profile.mean_sq_distance, profile.distance_quantiles = distances.result()
        for name, codes in sample.codes.items():
            profile.categorical.append(_categorical(name, codes, sample))
        rows = sample.segment_rows
        if rows is None:
            rows = np.bincount(segment, minlength=k)
        profile.segment_rows = np.asarray(rows, dtype=np.int64)
        return profile

    def renumbered(self, order):
        """The profile with old segment ``order[i]`` as segment i (``segments.renumber``)."""
        self.segment_rows = self.segment_rows[order]
        self.mean_sq_distance = self.mean_sq_distance[order]
        self.distance_quantiles = self.distance_quantiles[order]
        return self

    # ----- the model file ---------------------------------------------------------------
    def to_dict(self):
        return {
            "rows": self.rows,
            "sample_rows": self.sample_rows,
            "features": [_numeric_doc(f) for f in self.numeric]
            + [_categorical_doc(f) for f in self.categorical],
            "segments": [
                {
                    "rows": int(self.segment_rows[s]),
                    "mean_sq_distance": float(self.mean_sq_distance[s]),
                    "distance_quantiles": _listed(self.distance_quantiles[s]),
                }
                for s in range(self.segment_rows.shape[0])
            ],
        }

    @classmethod
    def from_dict(cls, doc, k):
        """A profile from a model file, checked (a ValueError/KeyError says what is wrong)."""
        profile = cls(int(doc["rows"]), int(doc["sample_rows"]))
        for item in doc["features"]:
            if item["kind"] == "numeric":
                profile.numeric.append(_numeric_from(item))
            elif item["kind"] == "categorical":
                profile.categorical.append(_categorical_from(item))
            else:
                raise ValueError(f"reference feature kind {item['kind']!r} is unknown")
        segments = doc["segments"]
        if len(segments) != k:
            raise ValueError(f"the reference profile has {len(segments)} segments, not {k}")
        profile.segment_rows = np.array([int(s["rows"]) for s in segments], dtype=np.int64)
        profile.mean_sq_distance = np.array([float(s["mean_sq_distance"]) for s in segments])
        profile.distance_quantiles = np.array(
            [_checked(s["distance_quantiles"], len(DISTANCE_LEVELS)) for s in segments]
        ).reshape(k, len(DISTANCE_LEVELS))
        return profile


def _sorted_present(values):
    """The values that are not NaN, sorted, as float64: float32 (the fit's columns) by
    ``radix.sorted_float32`` (NumPy's sort took 6 times as long here), float64 and short
    columns by NumPy (below ``RADIX_MIN`` values, loading the compiled sort costs more than
    it saves)."""
    if values.dtype == np.float32 and values.shape[0] >= RADIX_MIN:
        return radix.sorted_float32(values)
    return np.sort(values[~np.isnan(values)]).astype(np.float64)


def _distance_figures(segment, distance, k):
    """Each segment's mean squared distance and ``DISTANCE_LEVELS`` quantiles (0 for none),
    those of ``distance[segment == s]`` to the bit: the distances are grouped by one stable sort
    by segment (0.6 ms at 250,000 rows, on 16-bit keys, which NumPy radix-sorts), and each
    segment's sorted only at the ranks its quantiles read (a loop over segments that picked
    the rows of each and called ``np.quantile`` took 15 ms at k=64)."""
    mean_sq = np.zeros(k)
    quantiles = np.zeros((k, len(DISTANCE_LEVELS)))
    keys = segment.astype(np.uint16) if k <= 1 << 16 else segment
    grouped = distance[np.argsort(keys, kind="stable")]  # (a new array: changed below)
    bounds = np.concatenate([[0], np.cumsum(np.bincount(segment, minlength=k))])
    for s in range(k):
        mine = grouped[bounds[s] : bounds[s + 1]]
        if mine.size:
            mean_sq[s] = float(np.mean(mine.astype(np.float64) ** 2))
            mine.partition(measures.quantile_ranks(mine.size, DISTANCE_LEVELS))
            quantiles[s] = measures.sorted_quantiles(mine, DISTANCE_LEVELS)
    return mean_sq, quantiles


def _numeric(name, sample):
    """A numeric feature's reference, from its values sorted (on one of ``from_sample``'s
    threads, which then take the figures of the sorted values too: a fifth of the work)."""
    present = _sorted_present(sample.numeric[name])
    missing_share = sample.missing[name] / sample.rows if sample.rows else 0.0
    if present.size == 0:
        edges, bins, quantiles = np.empty(0), np.ones(1), np.zeros(measures.QUANTILES)
        mean = std = 0.0
    else:
        edges = measures.sorted_decile_edges(present)
        bins = measures.shares(measures.sorted_bin_counts(edges, present))
        quantiles = measures.sorted_quantiles(present, measures.quantile_levels())
        mean, std = float(present.mean()), float(present.std())
    shares = np.append(bins * (1.0 - missing_share), missing_share)
    low, high = sample.low[name], sample.high[name]
    return NumericReference(name, missing_share, low, high, mean, std, edges, shares, quantiles)


def _categorical(name, codes, sample):
    levels = list(sample.levels[name])
    counts = None if sample.level_counts is None else sample.level_counts.get(name)
    if counts is None:
        counts = category_counts(codes, len(levels))
    return CategoricalReference(name, levels, measures.shares(counts))


def category_counts(codes, n_levels):
    """Rows per level, then unseen, then missing, of an array of level codes."""
    counts = np.bincount(codes[codes >= 0], minlength=n_levels)
    unseen, missing = int(np.sum(codes == UNSEEN)), int(np.sum(codes == MISSING))
    return np.concatenate([counts, [unseen, missing]])


def _numeric_doc(f):
    return {
        "name": f.name,
        "kind": "numeric",
        "missing_share": f.missing_share,
        "min": f.low,
        "max": f.high,
        "mean": f.mean,
        "std": f.std,
        "edges": _listed(f.edges),
        "shares": _listed(f.shares),
        "quantiles": _listed(f.quantiles),
    }


def _categorical_doc(f):
    return {
        "name": f.name,
        "kind": "categorical",
        "levels": list(f.levels),
        "shares": _listed(f.shares),
    }


def _numeric_from(item):
    edges = _checked(item["edges"])
    if np.any(np.diff(edges) <= 0):
        raise ValueError(f"the reference edges of {item['name']!r} must increase")
    return NumericReference(
        str(item["name"]),
        float(item["missing_share"]),
        float(item["min"]),
        float(item["max"]),
        float(item["mean"]),
        float(item["std"]),
        edges,
        _checked(item["shares"], edges.size + 2),
        _checked(item["quantiles"], measures.QUANTILES),
    )


def _categorical_from(item):
    levels = list(item["levels"])
    return CategoricalReference(
        str(item["name"]), levels, _checked(item["shares"], len(levels) + 2)
    )


def _checked(values, size=None):
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if size is not None and array.size != size:
        raise ValueError(f"a reference profile list holds {array.size} values, not {size}")
    if not np.isfinite(array).all():
        raise ValueError("a reference profile holds values that are not finite")
    return array


def _listed(array):
    return [float(v) for v in np.asarray(array, dtype=np.float64)]


# ----- the profile of a fit ---------------------------------------------------------------
def profile_of_fit(model, tap):
    """The reference profile of a model just fitted, from the ``io.sources.RowTap`` of its
    decode pass (input rows as read: one-hot columns give the level, NaN a missing value)."""
    pre = model.preprocessor_
    names = pre.feature_names or [f"x{j}" for j in range(pre.n_features)]
    rows = tap.sample()
    one_hot = set(pre.one_hot_indices())
    plain = [j for j in range(len(names)) if j not in one_hot]
    # The columns are transposed on a thread of their own meanwhile, where threads are allowed
    # (NumPy copies without the GIL): the two took 15 ms instead of 23 at 250,000 x 32.
    with ThreadPoolExecutor(1) as pool:
        columns = pool.submit(_columns, rows, plain) if get_num_threads() > 1 else None
        segment, distance = _fitted_assignment(model, tap, rows)
        columns = _columns(rows, plain) if columns is None else columns.result()
    sample = PeriodSample(
        rows=tap.rows,
        numeric=dict(zip((names[j] for j in plain), columns, strict=True)),
        codes=_codes_of_one_hot(pre, names, rows),
        levels=dict(pre.levels or {}) if pre.one_hot() else {},
        segment=segment,
        distance=distance,
        missing={names[j]: int(tap.missing[j]) for j in plain},
        low={names[j]: _finite_or_zero(tap.low[j]) for j in plain},
        high={names[j]: _finite_or_zero(tap.high[j]) for j in plain},
        segment_rows=model._fit_sizes(),
    )
    return ReferenceProfile.from_sample(sample, model.n_clusters)


def _columns(rows, which):
    """Columns ``which`` of row-major ``rows`` as contiguous arrays (sorted next, each on its
    own), transposed a few thousand rows at a time: 4x faster than one strided gather."""
    out = np.empty((len(which), rows.shape[0]), dtype=rows.dtype)
    for s in range(0, rows.shape[0], 4096):
        out[:, s : s + 4096] = rows[s : s + 4096, which].T
    return out


def _fitted_assignment(model, tap, rows):
    """``assign_rows`` of the tapped rows from the fit's own labels, when its segments are
    the nearest centres: only each row's distance to its centre is computed, in NumPy (no
    search, and no search kernel to compile on a first run). Other models search."""
    labels = getattr(model, "labels_", None)
    positions = tap.positions
    if (
        not isinstance(labels, np.ndarray)
        or not model._segments_are_nearest()  # a mixture's, HDBSCAN's segments
        or positions.shape[0] != rows.shape[0]
    ):
        return assign_rows(model, rows)
    dropped = np.asarray(model.dropped_rows_, dtype=np.int64)
    before = np.searchsorted(dropped, positions)  # dropped rows ahead of each tapped one
    kept = np.ones(positions.shape[0], dtype=bool)
    if dropped.size:  # a tapped row that was itself dropped is the one ``before`` points at
        kept = dropped[np.minimum(before, dropped.size - 1)] != positions
    segment = np.full(rows.shape[0], -1, dtype=np.int32)
    distance = np.full(rows.shape[0], np.nan)
    if kept.any():
        mine = rows if kept.all() else np.ascontiguousarray(rows[kept])  # (no copy if all)
        segment[kept] = labels[(positions - before)[kept]]
        distance[kept] = _to_centre(model, model._scaled(mine), segment[kept])
    return segment, distance


def _to_centre(model, scaled, segment):
    """Euclidean distance of rows (in the centres' space) to their segment's centre, in
    NumPy float64: the same figures whether the segments came from the fit or a search.
    A few thousand rows at a time, so the float64 temporaries stay in cache (all at once, 250k
    rows of 64 features took half a second), in one buffer (a fifth faster than new arrays)."""
    centres = model._centers64()
    out = np.empty(scaled.shape[0])
    step = 4096
    buffer = np.empty((min(step, scaled.shape[0]), centres.shape[1]))
    for s in range(0, scaled.shape[0], step):
        part = scaled[s : s + step]
        gap = buffer[: part.shape[0]]
        # (the segments are valid; "clip" lets ``take`` write into ``gap`` without a copy)
        np.take(centres, segment[s : s + step], axis=0, out=gap, mode="clip")
        np.subtract(part, gap, out=gap)
        np.sqrt(np.einsum("ij,ij->i", gap, gap), out=out[s : s + step])
    return out


def assign_rows(model, rows):
    """Segment (-1: none) and Euclidean distance to its centre (NaN: none) of raw feature
    rows as the model reads them; a row with a missing value the model does not fill gets
    none."""
    segment = np.full(rows.shape[0], -1, dtype=np.int32)
    distance = np.full(rows.shape[0], np.nan)
    pre = model.preprocessor_
    whole = np.ones(rows.shape[0], dtype=bool)
    if pre.fill_values is None:
        whole = ~np.isnan(rows).any(axis=1)
    if whole.any():
        scaled = pre.transform(np.ascontiguousarray(rows[whole]))
        labels = np.empty(scaled.shape[0], dtype=np.int32)
        squared = np.empty(scaled.shape[0])
        model._nearest(scaled, labels, squared)  # (a mixture: the most probable component)
        segment[whole] = labels
        if model._segments_are_nearest():  # as ``_fitted_assignment`` measures it
            distance[whole] = _to_centre(model, scaled, labels)
        else:
            distance[whole] = np.sqrt(squared)
    return segment, distance


def _codes_of_one_hot(pre, names, rows):
    """{categorical column: level code per row} from the one-hot columns of ``rows``."""
    codes = {}
    if not pre.one_hot():
        return codes
    index = {name: j for j, name in enumerate(names)}
    for column, values in pre.levels.items():
        hot = rows[:, [index[level_name(column, v)] for v in values]] > 0
        found = hot.any(axis=1)
        codes[column] = np.where(found, hot.argmax(axis=1), MISSING).astype(np.int64)
    return codes


def _finite_or_zero(value):
    return float(value) if np.isfinite(value) else 0.0
