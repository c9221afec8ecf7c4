"""Segments as rules a marketer can read: "income > 80,000 and tenure_months > 40 → segment 3".

A shallow threshold tree with one leaf per segment, grown by IMM (Iterative Mistake
Minimization; Dasgupta, Frost, Moshkovitz and Rashtchian, "Explainable k-means and k-medians
clustering", ICML 2020) on a uniform sample of the data labelled by the model. At each node
the split (a numeric feature and a threshold in the data's own units, or a categorical column
and a set of its levels) is the one that separates the node's centres into two non-empty
groups while sending the fewest rows away from their own centre (the "mistakes"); a row once
separated from its centre takes no further part below. ExKMC does this for numbers only.

Numeric splits are "x <= t" with the centres in original units (``Preprocessor.inverse``: a
log1p or scaled model's centres in dollars and months), t the roundest number of the best
interval. Categorical splits are "column in S": each centre goes to the side of its most
common level (its modal share in the model); levels that are no centre's mode go to the side
that makes fewer mistakes; a missing or unseen level goes with the rest. ``agreement`` is the
share of the sampled customers the rules put in the model's segment.
"""

import itertools
import json
import math
from dataclasses import dataclass, field

import numpy as np

from ..cluster.assign import NO_SEGMENT
from ..cluster.kprototypes import KPrototypes
from ..errors import DataError
from ..io.sources import as_float32
from ..io.store import positions_within, sample_positions
from ..io.tables import TableReader, is_table_input
from ..monitor.scan import level_codes, model_columns
from ..preprocess.categories import level_name
from .profile import fastseg_model, what_sets_apart

FLOAT32_EPS = float(np.finfo(np.float32).eps)  # the precision of the values fastseg reads
MAX_SUBSET_LEVELS = 10  # modal levels up to this many: every subset tried; above, single levels


# ----- the sample ---------------------------------------------------------------------------
@dataclass
class Sample:
    """Sampled customers with a segment: raw numeric ``values`` (float64, missing values filled
    as the model fills them), categorical ``codes`` (``monitor.reference`` MISSING/UNSEEN
    below 0) and the model's ``labels``; ``rows``: input rows; ``left_out``: sampled rows the
    model gives no segment (a missing feature)."""

    values: np.ndarray
    codes: np.ndarray
    labels: np.ndarray
    rows: int
    left_out: int


def draw_sample(model, data, size, seed, numeric, levels):
    """One streaming pass: the model labels every row, rows at ``sample_positions`` are kept
    (memory follows the batch and the sample, not the input)."""
    if is_table_input(data):
        reader = data if isinstance(data, TableReader) else TableReader(data, model._derivations())
        n, describe = reader.count_rows(), reader.describe
        keep = list(dict.fromkeys([*numeric, *levels]))
        batches = model.iter_assign(reader, keep=keep, nulls="skip")
    else:
        data = np.asarray(data)
        if data.ndim != 2:
            raise DataError("X must be 2-dimensional")
        n, describe = data.shape[0], "the data"
        batches = model.iter_assign(data)
    if n == 0:
        raise DataError(f"{describe} has no rows")
    positions = sample_positions(n, size, seed)
    parts, first, left_out = [], 0, 0
    for batch in batches:
        at = positions_within(positions, first, first + batch.n_rows)
        left_out += int(batch.missing[at].sum())
        at = at[~batch.missing[at]]
        if batch.kept is None:  # an array: the batch is rows first .. first + n_rows of X
            values, codes = data[first + at].astype(np.float32), np.empty((at.size, 0), np.int64)
        else:
            frame = batch.kept[at]
            values = as_float32(frame, numeric, describe).to_numpy(order="c")
            codes = [level_codes(frame[c], v) for c, v in levels.items()]
            codes = np.stack(codes, axis=1) if codes else np.empty((at.size, 0), np.int64)
        parts.append((values.reshape(at.size, len(numeric)), codes, batch.segment[at]))
        first += batch.n_rows
    if not any(p[2].size for p in parts):
        raise DataError(f"no sampled row of {describe} has every feature the model needs")
    values, codes, labels = (np.concatenate(p) for p in zip(*parts, strict=True))
    values = _filled(model, values.astype(np.float64), numeric)
    return Sample(values, codes.reshape(labels.size, len(levels)), labels, n, left_out)


def _filled(model, values, numeric):
    """Missing values as the model reads them: its fill value, taken back to original units."""
    pre = getattr(model, "preprocessor_", None)  # (k-prototypes fills nothing)
    if pre is None or pre.fill_values is None or not np.isnan(values).any():
        return values
    for j, name in enumerate(numeric):
        at = pre.feature_names.index(name) if pre.feature_names else j
        fill = pre.fill_values[at]
        fill = math.expm1(fill) if at in pre.log1p_columns else fill
        values[np.isnan(values[:, j]), j] = fill
    return values


def centre_points(model, numeric, levels):
    """Each centre's numeric values in original units (k x numeric) and its modal level per
    categorical column (k x categorical: the level with the largest share)."""
    pre = model.preprocessor_
    original = pre.inverse(model.cluster_centers_)
    names = pre.feature_names or [f"x{j}" for j in range(pre.n_features)]
    centres = original[:, [names.index(n) for n in numeric]]
    modes = np.empty((original.shape[0], len(levels)), dtype=np.int64)
    for c, (column, values) in enumerate(levels.items()):
        shares = original[:, [names.index(level_name(column, v)) for v in values]]
        modes[:, c] = shares.argmax(axis=1)
    return centres, modes


# ----- IMM ----------------------------------------------------------------------------------
@dataclass
class Split:
    """``kind`` "numeric": left when values[:, column] <= threshold; "category": left when
    codes[:, column] is in ``levels`` (level codes)."""

    kind: str
    column: int
    mistakes: int
    threshold: float = 0.0
    levels: tuple = ()

    def goes_left(self, values, codes):
        if self.kind == "numeric":
            return values[:, self.column] <= self.threshold
        return np.isin(codes[:, self.column], self.levels)


@dataclass
class Node:
    """A node of the tree: ``segments`` its centres; a leaf (``split`` None) gives
    ``segment``, one of them (more than one only where no split separates them)."""

    segments: list
    split: Split | None = None
    left: "Node | None" = None
    right: "Node | None" = None
    segment: int = 0


def imm_tree(values, codes, labels, centres, modes, n_levels):
    """The IMM tree of the sampled rows (``values``, ``codes``, model ``labels``) and the
    centres (``centres`` numeric, ``modes`` categorical); ``n_levels`` per categorical column."""
    members = np.arange(centres.shape[0])
    return _grow(values, codes, labels, centres, modes, n_levels, members, np.arange(labels.size))


def _grow(values, codes, labels, centres, modes, n_levels, members, rows):
    """The subtree of the centres ``members``, grown on ``rows``: the rows that reached it
    alongside their own centre (a row once split from its centre no longer counts)."""
    node = Node(segments=[int(s) for s in members], segment=int(members[0]))
    if members.size == 1:
        return node
    split = best_split(values[rows], codes[rows], labels[rows], centres, modes, n_levels, members)
    if split is None:  # no feature tells these centres apart: the most common one stands
        node.segment = int(
            members[np.bincount(labels[rows], minlength=centres.shape[0])[members].argmax()]
        )
        return node
    node.split = split
    left = split.goes_left(centres[members], modes[members])
    row_left = split.goes_left(values[rows], codes[rows])
    own_left = np.isin(labels[rows], members[left])  # rows whose centre goes left
    kept = (values, codes, labels, centres, modes, n_levels)
    node.left = _grow(*kept, members[left], rows[row_left & own_left])
    node.right = _grow(*kept, members[~left], rows[~row_left & ~own_left])
    return node


def best_split(values, codes, labels, centres, modes, n_levels, members):
    """The split of a node with centres ``members`` and its rows that separates the centres
    and makes the fewest mistakes; ties: numeric before categorical, the first column, the
    lowest threshold. None when no column separates them (identical centres)."""
    members, best = np.asarray(members), None
    for j in range(values.shape[1]):
        found = numeric_split(values[:, j], centres[labels, j], centres[members, j])
        if found is not None and (best is None or found[0] < best.mistakes):
            best = Split("numeric", j, found[0], threshold=roundest_between(*found[1:]))
    for c in range(codes.shape[1]):
        found = category_split(codes[:, c], labels, modes[:, c], members, n_levels[c])
        if found is not None and (best is None or found[0] < best.mistakes):
            best = Split("category", c, found[0], levels=found[1])
    return best


def numeric_split(x, own, centres):
    """(mistakes, low, high) of the best threshold on one feature: any t in [low, high) sends
    the same rows left (x <= t); None when the centres share one value. ``x``: the rows'
    values; ``own``: each row's centre's value; ``centres``: the node's centres' values.

    A row is a mistake when exactly one of x <= t, own <= t holds, so the count is
    #(x <= t) + #(own <= t) - 2 #(max(x, own) <= t): three sorted arrays, one searchsorted
    each, over every breakpoint between the lowest and the highest centre at once.
    """
    low, high = centres.min(), centres.max()
    if low == high:
        return None
    cuts = np.unique(np.concatenate([x[(x >= low) & (x <= high)], centres]))
    t = cuts[:-1]  # below the highest centre: both sides keep a centre

    def at_most(a):
        return np.searchsorted(np.sort(a), t, side="right")

    mistakes = at_most(x) + at_most(own) - 2 * at_most(np.maximum(x, own))
    best = int(np.argmin(mistakes))
    return int(mistakes[best]), float(cuts[best]), float(cuts[best + 1])


def category_split(code, labels, modes, members, n_levels):
    """(mistakes, level codes S) of the best split "column in S" of one categorical column;
    None when the node's centres share one modal level. S holds some of the centres' modal
    levels (every subset up to MAX_SUBSET_LEVELS of them), and each other level whose rows
    mostly belong to centres on the S side; a missing or unseen level stays out of S."""
    member_modes = modes[members]
    distinct = np.unique(member_modes)
    if distinct.size < 2:
        return None
    local = np.full(modes.shape[0], -1)
    local[members] = np.arange(members.size)
    level = np.where(code >= 0, code, n_levels)  # missing and unseen: one extra row
    table = np.bincount(
        level * members.size + local[labels], minlength=(n_levels + 1) * members.size
    )
    table = table.reshape(n_levels + 1, members.size)  # rows per level and centre
    free = np.ones(n_levels + 1, dtype=bool)
    free[distinct], free[n_levels] = False, False
    sizes = range(1, distinct.size) if distinct.size <= MAX_SUBSET_LEVELS else (1,)
    best = None
    for subset in itertools.chain.from_iterable(itertools.combinations(distinct, r) for r in sizes):
        left = np.isin(member_modes, subset)
        to_left, to_right = table[:, left].sum(axis=1), table[:, ~left].sum(axis=1)
        goes_left = np.isin(np.arange(n_levels + 1), subset) | (free & (to_left > to_right))
        mistakes = int(np.where(goes_left, to_right, to_left).sum())
        if best is None or mistakes < best[0]:
            best = (mistakes, tuple(int(v) for v in np.flatnonzero(goes_left)))
    return best


def roundest_between(low, high):
    """A threshold in [low, high) that reads well: "income <= 80,000", not "<= 81,734.52" (on
    the sample every t in [low, high) sends the same rows left). The number with the fewest
    significant digits in the middle half of the gap, nearest its middle (out-of-sample values
    fall on either side alike), unless ``low`` itself is rounder (whole months: "<= 40", not
    "<= 40.5"). The middle if nothing shows in 15 digits."""
    quarter = (high - low) / 4
    a, b, middle = low + quarter, high - quarter, (low + high) / 2
    top = math.floor(math.log10(max(abs(a), abs(b), 1e-300)))
    for e in range(top, top - 16, -1):
        first, last = math.ceil(_scaled(a, e)), math.floor(_scaled(b, e))
        if first > last:
            continue
        if _digits_above(low, e):
            return float(low)
        value = _unscaled(min(max(round(_scaled(middle, e)), first), last), e)
        if low <= value < high:
            return value
    return middle


def _scaled(v, e):
    return v / 10.0**e if e >= 0 else v * 10.0**-e


def _unscaled(m, e):
    return float(m * 10.0**e if e >= 0 else m / 10.0**-e)


def _digits_above(value, e):
    """Whether ``value`` is a whole multiple of 10**(e + 1) (rounder than a step of 10**e), to
    float32 precision: the data's 71.73 is 71.73000336 in float64."""
    m = round(_scaled(value, e + 1))
    return abs(_unscaled(m, e + 1) - value) <= FLOAT32_EPS * abs(value)


# ----- the explanation ----------------------------------------------------------------------
def explain(model, data, sample_size=100_000, seed=0):
    """The rules that reproduce a fitted model's segments on ``data`` (Parquet path(s), a frame,
    or an array for a model fitted on one), grown by IMM on a uniform sample of
    ``sample_size`` rows drawn in one streaming pass (seed ``seed``). Returns an
    ``Explanation``: ``rules()``, ``agreement``, ``to_text()``, ``to_dict()``."""
    model = fastseg_model(model)
    model._check_fitted()
    if not isinstance(sample_size, int | np.integer) or sample_size < 1:
        raise DataError(f"sample_size must be a whole number of rows above 0, not {sample_size!r}")
    if isinstance(model, KPrototypes):  # prototypes are already numbers and modes
        numeric, levels = model._plain_features(), dict(model.categories_)
        centres, modes = model._numeric_centers(), model.modes_
    else:
        numeric, levels = model_columns(model)
        centres, modes = centre_points(model, numeric, levels)
    sample = draw_sample(model, data, int(sample_size), seed, numeric, levels)
    n_levels = [len(v) for v in levels.values()]
    tree = imm_tree(sample.values, sample.codes, sample.labels, centres, modes, n_levels)
    return Explanation(tree, numeric, levels, sample, _segment_labels(sample, numeric, len(modes)))


def _segment_labels(sample, numeric, k):
    """Each segment's short name, as ``fastseg profile`` makes it, from the sample's means."""
    values, labels = sample.values, sample.labels
    mean, std = values.mean(axis=0), values.std(axis=0)
    names = []
    for s in range(k):
        mine = values[labels == s]
        z = np.zeros(len(numeric)) if not mine.shape[0] else mine.mean(axis=0) - mean
        z = np.divide(z, std, out=np.zeros_like(z), where=std > 0)
        apart = what_sets_apart(z, numeric)
        names.append(" · ".join(apart[:3]) if apart else "typical")
    return names


@dataclass
class Explanation:
    """The tree of ``explain`` and how well it reproduces the model on the sample."""

    tree: Node
    numeric: list
    levels: dict
    sample: Sample
    labels: list  # each segment's short name
    predicted: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self.predicted = self.assign(self.sample.values, self.sample.codes)

    def assign(self, values, codes):
        """The segment the rules give rows of raw ``values`` and level ``codes``."""
        out = np.full(values.shape[0], NO_SEGMENT, dtype=np.int64)
        stack = [(self.tree, np.arange(values.shape[0]))]
        while stack:
            node, rows = stack.pop()
            if node.split is None:
                out[rows] = node.segment
                continue
            left = node.split.goes_left(values[rows], codes[rows])
            stack += [(node.left, rows[left]), (node.right, rows[~left])]
        return out

    @property
    def agreement(self):
        """Share of the sampled customers the rules put in the model's segment."""
        return float(np.mean(self.predicted == self.sample.labels))

    def rules(self):
        """(segment, rule text, share of the sampled customers the rule sends there), one per
        leaf (one per segment unless identical centres share a leaf), by segment."""
        n = self.predicted.size
        found = []
        for leaf, conditions in _leaves(self.tree, []):
            text = " and ".join(self._conditions_text(conditions)) or "every customer"
            if len(leaf.segments) > 1:
                others = ", ".join(str(s) for s in leaf.segments if s != leaf.segment)
                text += f" (no feature separates segment {leaf.segment} from {others})"
            found.append((leaf.segment, text, float(np.sum(self.predicted == leaf.segment) / n)))
        return sorted(found)

    def _conditions_text(self, conditions):
        """The path's conditions, one per column: "40 < age <= 60", "region in {north, west}"."""
        bounds, allowed, names = {}, {}, list(self.levels)
        for split, went_left in conditions:
            if split.kind == "numeric":
                low, high = bounds.get(split.column, (-math.inf, math.inf))
                t = split.threshold
                bounds[split.column] = (low, min(high, t)) if went_left else (max(low, t), high)
            else:
                every = set(range(len(self.levels[names[split.column]])))
                inside, missing_ok = allowed.get(split.column, (every, True))
                s = set(split.levels)
                allowed[split.column] = (
                    (inside & s, False) if went_left else (inside - s, missing_ok)
                )
        texts = [_range_text(self.numeric[j], *bounds[j]) for j in sorted(bounds)]
        for c in sorted(allowed):
            texts.append(_levels_text(names[c], self.levels[names[c]], *allowed[c]))
        return texts

    def to_dict(self):
        """The rules, the agreement and the tree as JSON values (column names, level values)."""
        return {
            "agreement": self.agreement,
            "rows": self.sample.rows,
            "sample_rows": int(self.sample.labels.size),
            "left_out": self.sample.left_out,
            "rules": [
                {
                    "segment": s,
                    "label": self.labels[s],
                    "rule": text,
                    "share": share,
                    "agreement": self._leaf_agreement(s),
                }
                for s, text, share in self.rules()
            ],
            "tree": self._node_dict(self.tree),
        }

    def _leaf_agreement(self, segment):
        """Share of the rule's customers the model also puts in ``segment``."""
        mine = self.predicted == segment
        return float(np.mean(self.sample.labels[mine] == segment)) if mine.any() else 1.0

    def _node_dict(self, node):
        if node.split is None:
            return {"segment": node.segment, "segments": node.segments}
        split = node.split
        if split.kind == "numeric":
            # as the data reads (float32: 71.73, not 71.7300033569336)
            threshold = float(str(np.float32(split.threshold)))
            test = {"feature": self.numeric[split.column], "threshold": threshold}
        else:
            column = list(self.levels)[split.column]
            test = {"feature": column, "levels": [self.levels[column][v] for v in split.levels]}
        return {
            **test,
            "mistakes": split.mistakes,
            "left": self._node_dict(node.left),
            "right": self._node_dict(node.right),
        }

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_text(self):
        """The rules as a marketer reads them, then how often they agree with the model."""
        lines = [
            f"{text} → segment {s} ({self.labels[s]}): {_percent(share)} of customers"
            for s, text, share in self.rules()
        ]
        n, rows = self.sample.labels.size, self.sample.rows
        every = n + self.sample.left_out == rows
        sampled = f"every customer with a segment, {n:,}" if every else f"a sample of {n:,}"
        lines.append(
            f"the rules agree with the model for {_percent(self.agreement)} of customers "
            f"({sampled} of {rows:,} rows)"
        )
        return "\n".join(lines)


def _leaves(node, conditions):
    """(leaf, [(split, went left), ...] on the way there) of every leaf, left first."""
    if node.split is None:
        yield node, conditions
        return
    yield from _leaves(node.left, [*conditions, (node.split, True)])
    yield from _leaves(node.right, [*conditions, (node.split, False)])


def _range_text(name, low, high):
    if low == -math.inf:
        return f"{name} ≤ {threshold_text(high)}"
    if high == math.inf:
        return f"{name} > {threshold_text(low)}"
    return f"{threshold_text(low)} < {name} ≤ {threshold_text(high)}"


def _levels_text(name, levels, inside, missing_ok):
    """ "region in {north, west}", or "region not in {east}" where the rest (missing, unseen
    levels) is included."""
    if missing_ok:
        outside = [str(v) for i, v in enumerate(levels) if i not in inside]
        return f"{name} not in {{{', '.join(outside)}}}"
    return f"{name} in {{{', '.join(str(v) for i, v in enumerate(levels) if i in inside)}}}"


def threshold_text(value):
    """A threshold as written: exact for the round numbers ``roundest_between`` picks
    (80,000 · 40 · 2.5), with six decimals at most."""
    for decimals in range(7):  # to float32 precision, the data's (``_digits_above``)
        if abs(round(value, decimals) - value) <= FLOAT32_EPS * abs(value):
            break
    return f"{value:,.{decimals}f}"


def _percent(share):
    return f"{share:.0%}" if share >= 0.01 or share == 0 else f"{share:.1%}"
