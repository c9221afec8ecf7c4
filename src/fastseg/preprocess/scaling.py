"""log1p and scaling: the one definition of each that fit and predict share."""

import numpy as np

from ..cluster import kernels
from ..errors import DataError


def standardize(rows, mean, std, out=None):
    """Standardised rows, in their own dtype (in place unless ``out`` is given).

    The one definition fit and predict share: ``(x - mean) / std`` rounded as NumPy would.
    """
    out = rows if out is None else out
    kernels.standardize_rows(rows, mean.astype(rows.dtype), std.astype(rows.dtype), out)
    return out


def log1p_in_place(rows, columns, names=None):
    """log(1 + x) of the ``columns`` (indices) of ``rows``, in place; a value at or below -1
    is an error naming the column (``names``: the features' names, if known). NaN (a
    missing value, to be filled) stays NaN."""
    for j in columns:
        column = rows[:, j]
        if (column <= -1).any():
            name = names[j] if names else f"feature {j}"
            raise DataError(
                f"log1p needs values above -1, and column '{name}' has {np.nanmin(column):g}: "
                "leave it out of log1p or shift it first"
            )
        np.log1p(column, out=column)
