"""The fitted preprocessing of a model: what turns raw columns into the rows it clusters.

One object owns every step, in the order the fit ran them: derived columns and one-hot
columns (computed by the reader, per batch), log1p, filling of missing values, scaling, PCA.
``transform`` replays them on a batch (predict, labels, profile, metrics, alignment all call
it), ``inverse`` takes centres back to business units, ``to_dict``/``from_dict`` put it in the
model file. Its values are fitted in the decode pass from mergeable statistics
(``preprocess.stats``).
"""

import numpy as np

from ..errors import DataError
from .categories import DEFAULT_WEIGHT, one_hot_columns
from .pca import PCA
from .scaling import log1p_in_place, standardize
from .settings import PreprocessSettings


class Preprocessor:
    """Fitted preprocessing; attributes are None (or empty) for the steps that do not run.

    ``feature_names`` are the fitted columns (one-hot ones included) or None for arrays;
    ``levels`` {column: levels} of the categorical columns; ``log1p_columns`` feature
    indices; ``fill_values`` per feature; ``centre``/``spread`` of the scaling; ``pca``.
    """

    def __init__(self, settings, n_features, feature_names=None, levels=None):
        self.settings = settings
        self.n_features = int(n_features)
        self.feature_names = None if feature_names is None else [str(n) for n in feature_names]
        self.levels = levels or None
        self.log1p_columns = []
        self.fill_values = None
        self.centre = self.spread = None
        self.pca = None

    # ----- columns the reader computes ------------------------------------------------------
    @property
    def category_weight(self):
        weight = self.settings.category_weight
        return DEFAULT_WEIGHT if weight is None else weight

    def one_hot(self):
        """(name, polars expression) of every one-hot column, in a fixed order."""
        if not self.settings.categorical or not self.levels:
            return []
        return one_hot_columns(self.levels, self.category_weight)

    def derivations(self):
        """The derived and one-hot columns every read of the input must compute."""
        return [*(self.settings.derive or ()), *self.one_hot()]

    def plain_features(self):
        """The fitted feature names other than the one-hot columns (the numbers a user chose)."""
        one_hot = {name for name, _ in self.one_hot()}
        return [n for n in self.feature_names or [] if n not in one_hot]

    def one_hot_indices(self):
        """Feature indices of the one-hot columns: they keep their 0/weight values."""
        names = {name for name, _ in self.one_hot()}
        return [j for j, n in enumerate(self.feature_names or []) if n in names]

    def resolve_log1p(self):
        """Feature indices that ``settings.log1p`` names (column names, or indices for
        arrays), checked; stored as ``log1p_columns``."""
        columns = []
        for item in self.settings.log1p or ():
            if isinstance(item, str):
                if item not in (self.feature_names or []):
                    raise DataError(f"log1p names '{item}', which is not a feature")
                columns.append(self.feature_names.index(item))
            elif 0 <= int(item) < self.n_features:
                columns.append(int(item))
            else:
                raise DataError(f"log1p names feature {item}; X has {self.n_features}")
        self.log1p_columns = sorted(set(columns))
        return self.log1p_columns

    # ----- replay and undo -----------------------------------------------------------------
    def transform(self, rows):
        """Rows in the space the centres live in (log1p, filling, scaling and PCA replayed in
        the fit's order), checked finite. ``rows`` is not changed."""
        if self.log1p_columns:
            rows = rows.copy()
            log1p_in_place(rows, self.log1p_columns, self.feature_names)
        if self.fill_values is not None and np.isnan(rows).any():
            rows = np.where(np.isnan(rows), self.fill_values.astype(rows.dtype), rows)
        if not np.isfinite(rows).all():
            raise DataError("X holds NaN or infinite values; remove or replace them first")
        if self.spread is not None:
            rows = standardize(rows, self.centre, self.spread, out=np.empty_like(rows))
        return rows if self.pca is None else self.pca.transform(rows)

    def inverse(self, centers):
        """Centres (float64) in the input's units: dollars, years, GB; a one-hot column as
        the share of the segment with that level."""
        centers = np.array(centers, dtype=np.float64)
        if self.pca is not None:
            centers = self.pca.inverse(centers)
        if self.spread is not None:
            centers = centers * self.spread + self.centre
        columns = self.log1p_columns
        centers[:, columns] = np.expm1(centers[:, columns])
        one_hot = self.one_hot_indices()
        if one_hot:
            centers[:, one_hot] /= self.category_weight
        return centers

    def forward_original(self, points):
        """``inverse`` undone: points in business units (one-hot shares) to the centres' space."""
        points = np.array(points, dtype=np.float64)
        one_hot = self.one_hot_indices()
        points[:, one_hot] *= self.category_weight  # shares back to values
        return self.transform(points)

    # ----- the model file -------------------------------------------------------------------
    def to_dict(self):
        return {
            "settings": _plain(self.settings.as_params()),
            "n_features": self.n_features,
            "feature_names": self.feature_names,
            "categories": self.levels,
            "log1p_columns": list(self.log1p_columns),
            "fill_values": _listed(self.fill_values),
            "scaling": None
            if self.spread is None
            else {"centre": self.centre.tolist(), "spread": self.spread.tolist()},
            "pca": None
            if self.pca is None
            else {
                "mean": self.pca.mean.tolist(),
                "components": self.pca.components.tolist(),
                "explained_variance": self.pca.explained_variance.tolist(),
                "explained_variance_ratio": self.pca.explained_variance_ratio.tolist(),
            },
        }

    @classmethod
    def from_dict(cls, doc):
        """A Preprocessor from ``to_dict``'s output, every value checked (predict trusts it);
        a ValueError or KeyError says what is wrong."""
        settings = PreprocessSettings(**doc["settings"])
        d = int(doc["n_features"])
        pre = cls(settings, d, doc["feature_names"], _checked_levels(doc["categories"]))
        if pre.feature_names is not None and len(pre.feature_names) != d:
            raise ValueError(f"feature_names must be {d} column names")
        pre.log1p_columns = [int(j) for j in doc["log1p_columns"]]
        if any(not 0 <= j < d for j in pre.log1p_columns):
            raise ValueError(f"log1p_columns must be feature indices below {d}")
        if doc["fill_values"] is not None:
            pre.fill_values = _finite(doc["fill_values"], "fill values", (d,))
        if doc["scaling"] is not None:
            pre.centre = _finite(doc["scaling"]["centre"], "scaling centre", (d,))
            pre.spread = _finite(doc["scaling"]["spread"], "scaling spread", (d,))
            if (pre.spread <= 0).any():
                raise ValueError(f"scaling needs {d} positive spreads")
        if doc["pca"] is not None:
            pre.pca = _pca_from(doc["pca"], d)
        return pre

    @property
    def n_components(self):
        """Width of the rows the centres live in."""
        return self.n_features if self.pca is None else self.pca.components.shape[0]


def _pca_from(doc, d):
    components = _finite(doc["components"], "pca components")
    if components.ndim != 2 or components.shape[1] != d:
        raise ValueError(f"pca needs components of {d} features")
    p = components.shape[0]
    return PCA(
        _finite(doc["mean"], "pca mean", (d,)),
        components,
        _finite(doc["explained_variance"], "pca explained_variance", (p,)),
        _finite(doc["explained_variance_ratio"], "pca explained_variance_ratio", (p,)),
    )


def _checked_levels(levels):
    if levels is None:
        return None
    if not isinstance(levels, dict) or not all(isinstance(v, list) and v for v in levels.values()):
        raise ValueError("categories must map each categorical column to its levels")
    for column, values in levels.items():  # one kind per column, as a fit learns them
        kinds = {bool if isinstance(v, bool) else type(v) for v in values}
        if len(kinds) != 1 or not kinds <= {str, int, bool}:
            raise ValueError(
                f"the levels of '{column}' must be all text, all integers or all booleans"
            )
    return levels


def _finite(values, what, shape=None):
    array = np.asarray(values, dtype=np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{what} holds non-finite values")
    if shape is not None and array.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, not {array.shape}")
    return array


def _listed(array):
    return None if array is None else np.asarray(array, dtype=np.float64).tolist()


def _plain(params):
    """Settings as JSON values (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
