"""Scaling: the one definition of ``(x - centre) / spread`` that fit and predict share."""

from ..cluster import kernels


def standardize(rows, mean, std, out=None):
    """Standardised rows, in their own dtype (in place unless ``out`` is given).

    The one definition fit and predict share: ``(x - mean) / std`` rounded as NumPy would.
    """
    out = rows if out is None else out
    kernels.standardize_rows(rows, mean.astype(rows.dtype), std.astype(rows.dtype), out)
    return out
