"""Assigning one customer (or a few) in microseconds: ``model.assign(record)``.

A batch goes through ``iter_assign``: the one reader, polars casts, blocks of rows. A record
from a signup form or an HTTP request needs none of that: its fields are checked in plain
Python, its row goes through one small Numba kernel (``kernels.assign_records``) that replays
log1p, scaling and PCA and finds the nearest centre and the runner-up, and the answer says
why, in words: each feature's share of the squared-distance gap between the two centres
(taken in the scaled feature space, before any PCA).

Derived features (``derive=``) are computed by polars on a one-row frame, as the reader
computes them for a batch: correct by construction, but some hundred microseconds a call.
"""

import gc
import math
from collections.abc import Mapping
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import polars as pl

from ..errors import DataError
from ..io.tables import parse_derived
from ..preprocess.categories import level_name
from ..workflow.segments import number_text
from . import kernels

TOP_FEATURES = 3  # features an explanation names
_ABSENT = object()
_FLOAT_MAX = float(np.finfo(np.float64).max)


class RecordAssigner:
    """A fitted model's preprocessing and centres as small arrays, and what a record must
    hold: built once per model (``Engine.assign`` keeps it)."""

    def __init__(self, model):
        pre = model.preprocessor_
        d = pre.n_features
        self.names = names = pre.feature_names or [f"x{j}" for j in range(d)]
        self.levels = dict(pre.levels or {}) if pre.one_hot() else {}
        self.hot = {
            c: {v: names.index(level_name(c, v)) for v in values}
            for c, values in self.levels.items()
        }
        one_hot = {j for columns in self.hot.values() for j in columns.values()}
        derived = dict(parse_derived(text) for text in pre.settings.derive or ())
        self.derived = {n: e for n, e in derived.items() if n in names}
        self.numeric = [(n, j) for j, n in enumerate(names) if j not in one_hot]
        self.numeric = [(n, j) for n, j in self.numeric if n not in self.derived]
        inputs = [r for e in self.derived.values() for r in e.meta.root_names()]
        self.inputs = [n for n in dict.fromkeys(inputs) if n not in dict(self.numeric)]
        self.fields = [n for n, _ in self.numeric] + self.inputs + list(self.levels)
        # what an explanation weighs: each numeric feature, and each categorical column (its
        # one-hot columns together), one group each in the kernel's contributions
        self.explained = self.numeric + [(n, names.index(n)) for n in self.derived]
        self.categorical = list(self.hot)
        self.group = np.zeros(d, dtype=np.int64)
        for g, (_, j) in enumerate(self.explained):
            self.group[j] = g
        for g, hot in enumerate(self.hot.values(), start=len(self.explained)):
            self.group[list(hot.values())] = g
        self.allowed = frozenset(self.fields)
        self.weight = pre.category_weight
        self.log1p_columns = frozenset(pre.log1p_columns)
        self._arrays(model, pre, d)

    def _arrays(self, model, pre, d):
        """The kernel's float64 arrays (scaling 0/1 and an empty PCA where none ran)."""
        self.fills = pre.fill_values is not None
        self.params = np.zeros((6, d))  # log1p, centre, spread, PCA mean, group, filling
        if self.fills:  # (fill values are taken after log1p, as the fit took them)
            self.params[5] = pre.fill_values
            self.filled = self.params[5].copy()  # a null's value, in the input's units
            self.filled[pre.log1p_columns] = np.expm1(self.filled[pre.log1p_columns])
        self.params[0, pre.log1p_columns] = 1.0
        self.params[2] = 1.0
        if pre.spread is not None:
            self.params[1], self.params[2] = pre.centre, pre.spread
        self.params[4] = self.group
        self.groups = len(self.explained) + len(self.hot)
        self.width = 4 + 2 * TOP_FEATURES  # the kernel's answer per record
        self.centers = np.ascontiguousarray(model.cluster_centers_, dtype=np.float64)
        if pre.pca is None:
            self.components, self.scaled_centers = np.empty((0, d)), self.centers
        else:
            self.params[3] = pre.pca.mean
            self.components = np.ascontiguousarray(pre.pca.components, dtype=np.float64)
            self.scaled_centers = np.ascontiguousarray(pre.pca.inverse(self.centers))
        # business units, for the words: each centre's value of each feature, as text too
        original = pre.inverse(model.cluster_centers_)
        self.original = original.tolist()
        one_hot = {j for columns in self.hot.values() for j in columns.values()}
        self._pairs = {}  # (segment, runner-up, feature): the centres in words (``_pair``)
        self.texts = [
            [f"{v:.0%}" if j in one_hot else number_text(v) for j, v in enumerate(centre)]
            for centre in original
        ]

    # ----- one record's row -----------------------------------------------------------------
    def row(self, record):
        """(the record's raw feature row, missing values filled; the level of each
        categorical column; the levels never seen)."""
        if type(record) is not dict and not isinstance(record, Mapping):
            raise DataError(f"a customer is an object of field: value, not {type(record).__name__}")
        if not self.allowed.issuperset(record):
            extra = [f for f in record if f not in self.allowed]
            raise DataError(
                f"unknown field(s) {', '.join(map(repr, extra))}: the model reads "
                f"{', '.join(self.fields)}"
            )
        x = [0.0] * len(self.names)  # a list: NumPy's per-item overhead is most of a record
        for name, j in self.numeric:
            value = record.get(name, _ABSENT)
            if type(value) is float:  # the usual case first
                if not math.isfinite(value):
                    raise DataError(f"field '{name}' is {value}: give a finite number")
            elif type(value) is int and -_FLOAT_MAX <= value <= _FLOAT_MAX:
                pass
            else:
                value = self._number(name, value)
                if value != value:  # a null: the kernel fills it as the fit did
                    x[j] = value
                    continue
            if value <= -1 and j in self.log1p_columns:
                raise DataError(f"field '{name}' is {value:g}: log1p needs values above -1")
            x[j] = float(value)
        if self.derived:
            self._derive(record, x)
        return (x, *self._categories(record, x))

    def _number(self, name, value):
        """A field that is not a plain int or float: NaN for a null the model fills, else
        an error naming the field."""
        if value is _ABSENT:
            raise DataError(f"missing field '{name}': the model reads {', '.join(self.fields)}")
        if value is None:
            if self.fills:
                return math.nan  # filled as the fit filled
            raise DataError(
                f"field '{name}' is null, and the model fills no missing values (fitted with "
                "missing='drop' or 'error'): give a number"
            )
        if isinstance(value, bool) or not isinstance(value, Real):
            raise DataError(f"field '{name}' must be a number, not {value!r}")
        if isinstance(value, Integral) and not -_FLOAT_MAX <= value <= _FLOAT_MAX:
            digits = len(str(abs(int(value))))
            raise DataError(f"field '{name}' has {digits} digits: beyond the range of a float")
        if not math.isfinite(value):
            raise DataError(f"field '{name}' is {value}: give a finite number")
        return float(value)

    def _derive(self, record, x):
        """Derived features from a one-row frame, as the reader computes them."""
        missing = [n for n in self.inputs if n not in record]
        if missing:
            raise DataError(
                f"missing field '{missing[0]}': the model reads {', '.join(self.fields)}"
            )
        given = {n: [record[n]] for n in self.inputs}
        given.update({n: [x[j]] for n, j in self.numeric})
        try:
            values = pl.DataFrame(given).select(list(self.derived.values())).row(0)
        except pl.exceptions.PolarsError as exc:
            raise DataError(f"cannot derive {', '.join(self.derived)}: {exc}") from None
        for name, value in zip(self.derived, values, strict=True):
            x[self.names.index(name)] = math.nan if value is None else float(value)

    def _categories(self, record, x):
        """Set the record's one-hot columns; returns (the level of each categorical column
        and its one-hot column (None: a null or a level never seen), {column: unseen level})."""
        chosen, unseen = [], {}
        for column, hot in self.hot.items():
            value = record.get(column, _ABSENT)
            if value is _ABSENT:
                raise DataError(
                    f"missing field '{column}': the model reads {', '.join(self.fields)}"
                )
            if not isinstance(value, str | int | type(None)):  # (bool is an int)
                _check_kind(column, value, self.levels[column])
            j = hot.get(value) if value is not None else None
            if j is not None and type(value) is type(self.levels[column][0]):
                x[j] = self.weight  # as the one-hot column holds it
            elif value is not None:  # no level: none of its columns set, as predict does
                _check_kind(column, value, self.levels[column])
                j, unseen[column] = None, value
            chosen.append((value, j))
        return chosen, unseen

    # ----- answers ----------------------------------------------------------------------------
    def assign(self, records):
        """An answer dict per record (see ``Engine.assign``), in order."""
        if len(records) > 1:
            with _collector_paused():
                return self._assign(records)
        return self._assign(records)

    def assign_one(self, record):
        """The answer for one record (``assign`` without the lists around it)."""
        x, chosen, unseen = self.row(record)
        out = np.empty((1, self.width))
        kernels.assign_records(
            np.array(x, dtype=np.float64)[None, :],
            self.params,
            self.components,
            self.centers,
            self.scaled_centers,
            self.groups,
            out,
        )
        return self._answer(x, chosen, unseen, out[0].tolist())

    def _assign(self, records):
        if not records:
            return []
        rows = [self.row(r) for r in records]
        if len(rows) == 1:
            X = np.array(rows[0][0], dtype=np.float64)[None, :]
        else:
            X = np.array([r[0] for r in rows], dtype=np.float64).reshape(len(rows), -1)
        out = np.empty((X.shape[0], self.width))
        kernels.assign_records(
            X, self.params, self.components, self.centers, self.scaled_centers, self.groups, out
        )
        return [self._answer(*rows[i], found) for i, found in enumerate(out.tolist())]

    def _answer(self, x, chosen, unseen, found):
        best, distance, runner, runner_distance = found[:4]
        best = int(best)
        answer = {"segment": best, "distance": distance}
        if runner < 0:
            answer.update(runner_up=None, margin=None, contributions=[])
            answer["explanation"] = "the model has one segment"
        else:
            runner = int(runner)
            parts, words = self._contributions(x, chosen, found[4:], best, runner)
            answer.update(runner_up=runner, margin=runner_distance - distance, contributions=parts)
            answer["explanation"] = words
        if unseen:
            answer["unseen"] = unseen
        return answer

    def _pair(self, best, runner, j):
        """'(segment 4: 182.2, segment 3: 49.37; ': the two centres' values of feature j in
        words, formatted once per pair of segments (most of an explanation's cost)."""
        text = (
            f"(segment {best}: {self.texts[best][j]}, segment {runner}: {self.texts[runner][j]}; "
        )
        self._pairs[best, runner, j] = text
        return text

    def _contributions(self, x, chosen, top, best, runner):
        """The features that most favour ``best`` over ``runner`` (the kernel's ``top``
        groups, then their shares), largest first: each one's share of the squared-distance
        gap, counted over the features in favour (those pulling towards the runner-up are
        left out of the total, so the shares stay within 100 %); a categorical column's
        one-hot columns together. A category's centres are the share of each segment's
        customers with the record's level (0 for a level the fit never saw).

        Returns (the parts, the same in words, what a marketer reads)."""
        parts, said, m = [], [], len(self.explained)
        mine, theirs = self.original[best], self.original[runner]
        for t in range(TOP_FEATURES):
            g, share = int(top[t]), top[TOP_FEATURES + t]
            if g < 0:
                break
            if g < m:
                name, j = self.explained[g]
                value = x[j] if x[j] == x[j] else float(self.filled[j])  # a null: as filled
                shown = number_text(value)
            else:
                name, (value, j) = self.categorical[g - m], chosen[g - m]
                shown = "none" if value is None else repr(value)
            if j is None:
                part = {"feature": name, "value": value, "share": share}
                part["segment_centre"] = part["runner_up_centre"] = 0.0
                said.append(f"{name} {shown} (in neither segment; {share:.0%} of the gap)")
            else:
                part = {"feature": name, "value": value, "share": share}
                part["segment_centre"], part["runner_up_centre"] = mine[j], theirs[j]
                centres = self._pairs.get((best, runner, j)) or self._pair(best, runner, j)
                said.append(f"{name} {shown} {centres}{share:.0%} of the gap)")
            parts.append(part)
        if not parts:
            return parts, f"segment {best}: about as near as segment {runner}"
        return parts, f"segment {best} rather than {runner} for " + "; ".join(said)


@contextmanager
def _collector_paused():
    """Python's cyclic garbage collector paused while a list of answers is built: thousands
    of small containers that live until the call returns (and hold no cycles) made it walk
    them again and again, 18 µs a record at 10,000 records against 8 µs paused."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _check_kind(column, value, levels):
    """A categorical value must be of the kind the model learned (text, booleans, integers)."""
    want = levels[0]
    if isinstance(want, bool):
        ok = isinstance(value, bool)
    elif isinstance(want, str):
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, Integral) and not isinstance(value, bool)
    if not ok:
        shown = ", ".join(map(repr, levels[:5])) + (", ..." if len(levels) > 5 else "")
        raise DataError(f"field '{column}' must be one of the kind {shown}, not {value!r}")
