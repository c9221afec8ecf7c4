"""The preprocessing settings, declared once: the estimators' parameters, the CLI's options,
``select_k`` and the report (the model's own settings) all read them from here.

Defaults differ on purpose between the library and the command line, and only in two fields:
a scikit-learn estimator never changes the data it is given unless asked (``scale="none"``,
``missing="error"``, as scikit-learn's own ``KMeans``), while ``fastseg fit`` is the analyst's
tool on raw customer tables, so it standardises and drops rows with missing features unless
told otherwise (``CLI_DEFAULTS``). Both are documented in the README.
"""

from dataclasses import asdict, dataclass, field, fields, replace

SCALINGS = ("none", "standard", "minmax", "robust")
MISSING_POLICIES = ("error", "drop", "mean", "median")
IMPUTING = ("mean", "median")  # rows with nulls are kept, nulls become NaN to be filled


@dataclass(frozen=True)
class PreprocessSettings:
    """How raw columns become the rows that are clustered, in this order: derive, log1p,
    fill, scale, one-hot, PCA."""

    derive: list | None = field(
        default=None,
        metadata={
            "help": "a feature computed from other columns, 'name = SQL expression' (repeat for "
            "more), e.g. 'total_spend = mnt_wines + mnt_meat'; name it in the features to use it",
        },
    )
    log1p: list | None = field(
        default=None,
        metadata={
            "help": "features to take log(1 + x) of before scaling, e.g. income,avg_order_value",
        },
    )
    missing: str = field(
        default="error",
        metadata={
            "choices": MISSING_POLICIES,
            "help": "rows with a missing feature: drop them (counted), fill the gaps with the "
            "feature's mean or median, or stop with an error; e.g. median",
        },
    )
    scale: str = field(
        default="none",
        metadata={
            "choices": SCALINGS,
            "help": "map features to (x - centre) / spread: standard (mean, std), minmax (min, "
            "range), robust (median, interquartile range) or none; e.g. robust",
        },
    )
    categorical: list | None = field(
        default=None,
        metadata={
            "help": "columns to one-hot encode besides the features (levels learned in the fit; "
            "one never seen later is counted, never a crash), e.g. region,gender",
        },
    )
    category_weight: float | None = field(
        default=None,
        metadata={
            "help": "value of a one-hot column where the row has the level (default 0.707: a "
            "different category counts like one standard deviation), e.g. 0.5",
        },
    )
    pca: int | float | None = field(
        default=None,
        metadata={
            "help": "cluster on principal components of the scaled features: a number of them, "
            "or the share of variance to keep, e.g. 3 or 0.9",
        },
    )

    def __post_init__(self):
        for name in ("missing", "scale"):
            choices = next(f for f in fields(self) if f.name == name).metadata["choices"]
            if getattr(self, name) not in choices:
                raise ValueError(f"{name}={getattr(self, name)!r}: use one of {', '.join(choices)}")

    @classmethod
    def names(cls):
        """The settings' names, in the order the steps run."""
        return [f.name for f in fields(cls)]

    @classmethod
    def of(cls, obj):
        """The settings held as attributes of ``obj`` (an estimator's parameters)."""
        return cls(**{name: getattr(obj, name) for name in cls.names()})

    def as_params(self):
        return asdict(self)

    def with_changes(self, **changes):
        return replace(self, **changes)


# ``fastseg fit``, ``select-k`` and ``fastseg.select_k``: standardised features, rows with nulls
# dropped.
CLI_DEFAULTS = PreprocessSettings(scale="standard", missing="drop")
