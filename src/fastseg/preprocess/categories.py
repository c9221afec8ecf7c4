"""One-hot encoding of categorical columns: levels learned while fitting, each level a column
worth ``weight`` where the row has it and 0 elsewhere. A level the fit never saw (or a null)
sets none of them, and is counted where rows are labelled."""

import math
import warnings

import polars as pl

from .. import config
from ..errors import DataError
from .stats import CategoryLevels

# Two rows in different categories are then as far apart (squared) as one standard deviation.
DEFAULT_WEIGHT = 1 / math.sqrt(2)


def learn_levels(reader, columns):
    """{column: sorted distinct non-null values} from one pass of the reader over those
    columns (``reader``: an ``io.tables.TableReader``)."""
    schema, describe = reader.schema, reader.describe
    missing = [c for c in columns if c not in schema]
    if missing:
        raise DataError(f"no such categorical column(s) in {describe}: {', '.join(missing)}")
    for c in columns:  # levels are stored in the JSON model file: text, booleans or integers
        kind = schema[c]
        if not (
            isinstance(kind, (pl.String, pl.Categorical, pl.Enum, pl.Boolean)) or kind.is_integer()
        ):
            raise DataError(
                f"categorical column '{c}' of {describe} is {kind}: use text, boolean or "
                "integer categories (cast it first)"
            )
    levels = CategoryLevels(columns)
    for frame in reader.frames(columns, config.batch_size):
        levels.update(frame)
    return levels.levels(describe)


def check_level_kinds(schema, levels, describe):
    """Each categorical column must hold the kind of values the model learned (text, booleans
    or integers): compared with the other kind, every row would fail, or match no level."""
    for column, values in levels.items():
        if column not in schema:
            raise DataError(f"categorical column '{column}' not found in {describe}")
        have, learned = _dtype_kind(schema[column]), _value_kind(values[0])
        if have != learned:
            raise DataError(
                f"categorical column '{column}' of {describe} holds {have} ({schema[column]}), "
                f"but the model learned it as {learned} (e.g. {values[0]!r}): give the column "
                "as it was when the model was fitted"
            )


def _dtype_kind(kind):
    if isinstance(kind, (pl.String, pl.Categorical, pl.Enum)):
        return "text"
    if isinstance(kind, pl.Boolean):
        return "booleans"
    return "integers" if kind.is_integer() else str(kind)


def _value_kind(value):
    if isinstance(value, bool):
        return "booleans"
    return "text" if isinstance(value, str) else "integers"


def level_name(column, value):
    return f"{column}={value}"


def one_hot_columns(levels, weight):
    """(name, polars expression) of every one-hot column, in a fixed order."""
    return [
        (level_name(c, v), (pl.col(c) == v).fill_null(False).cast(pl.Float64) * weight)
        for c, values in levels.items()
        for v in values
    ]


class UnseenLevels:
    """Rows whose categorical value the fit never saw, counted per column with a few of the
    new values, over the batches of a pass; ``warn`` says so once, at the end."""

    def __init__(self, levels):
        self.levels = levels
        self.rows = dict.fromkeys(levels, 0)
        self.examples = {c: [] for c in levels}

    def count(self, frame):
        new = {c: pl.col(c).is_not_null() & ~pl.col(c).is_in(v) for c, v in self.levels.items()}
        counts = frame.select(e.sum().alias(c) for c, e in new.items()).row(0, named=True)
        for column, n in counts.items():
            if n:
                self.rows[column] += n
                if len(self.examples[column]) < 3:
                    seen = frame.filter(new[column]).get_column(column).unique(maintain_order=True)
                    for value in seen.head(3).to_list():
                        if value not in self.examples[column] and len(self.examples[column]) < 3:
                            self.examples[column].append(value)

    def warn(self):
        found = [c for c, n in self.rows.items() if n]
        if not found:
            return
        parts = [
            f"{c}: {self.rows[c]:,} rows (e.g. {', '.join(repr(v) for v in self.examples[c])})"
            for c in found
        ]
        warnings.warn(
            f"categories the fit never saw, in {'; '.join(parts)}: those rows were segmented "
            "without that column",
            UnseenCategoryWarning,
            stacklevel=4,
        )


class UnseenCategoryWarning(UserWarning):
    """Rows whose categorical value the model never saw: labelled with that column left out."""
