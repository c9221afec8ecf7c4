"""Drift measures between a reference distribution and a new one: effect sizes that decide
(PSI, Wasserstein / std, Jensen–Shannon) and p-values that are only shown beside n.

Bins come from the reference (decile edges, category levels); the outer bins are open, so a
value beyond the reference's range still counts, and a category the reference never saw has
a bin of its own. An empty bin counts as ``EPSILON`` of the rows (else PSI is infinite).
"""

import numpy as np

EPSILON = 1e-4  # the share an empty bin counts as
QUANTILES = 200  # quantiles a reference keeps per numeric feature: at (i + 0.5) / QUANTILES
DECILES = np.arange(1, 10) / 10


def quantile_levels():
    """The probability levels a reference's quantiles are taken at (midpoints of 200 equal
    slices: the Wasserstein distance between two such lists is the midpoint rule of
    ∫|Q_ref(u) - Q_new(u)| du)."""
    return (np.arange(QUANTILES) + 0.5) / QUANTILES


def sorted_decile_edges(values):
    """The distinct decile edges of sorted ``values`` (no NaN): the bins are (-inf, e1],
    (e1, e2], ..., (e_last, inf), so ties (many zeros) merge bins instead of making empty
    ones."""
    return np.unique(sorted_quantiles(values, DECILES))


def sorted_quantiles(values, levels):
    """``np.quantile(values, levels)`` (its default "linear" method, rounded alike) of values
    already sorted, or sorted at ``quantile_ranks`` only: no selection, just the interpolation."""
    n = values.shape[0]
    virtual = np.asarray(levels, dtype=np.float64) * (n - 1)
    below = np.floor(virtual).astype(np.int64)
    above = np.minimum(below + 1, n - 1)
    t = virtual - below
    a, b = values[below], values[above]
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def quantile_ranks(n, levels):
    """The ranks ``sorted_quantiles`` reads among n values: values put in place at these by
    ``np.partition`` (the selection ``np.quantile`` makes) serve as well as sorted ones."""
    below = np.floor(np.asarray(levels, dtype=np.float64) * (n - 1)).astype(np.int64)
    return np.union1d(below, np.minimum(below + 1, n - 1))


def sorted_bin_counts(edges, values):
    """``bin_counts`` of values already sorted: one binary search per edge."""
    ends = np.searchsorted(values, edges, side="right")
    return np.diff(np.concatenate([[0], ends, [values.shape[0]]]))


def bin_counts(edges, values):
    """Rows of ``values`` (no NaN) in each bin of ``edges`` (len(edges) + 1 of them)."""
    return np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)


def shares(counts):
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return counts / total if total > 0 else counts


def psi(expected, actual):
    """Population stability index of two share vectors over the same bins:
    Σ (a - e) ln(a / e), each share at least ``EPSILON``."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), EPSILON)
    a = np.maximum(np.asarray(actual, dtype=np.float64), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_terms(expected, actual):
    """Each bin's term of ``psi`` (a segment's part of the share PSI)."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), EPSILON)
    a = np.maximum(np.asarray(actual, dtype=np.float64), EPSILON)
    return (a - e) * np.log(a / e)


def jensen_shannon(expected, actual):
    """Jensen–Shannon distance (base 2: 0 the same, 1 disjoint) of two share vectors."""
    from scipy.spatial.distance import jensenshannon

    if not np.sum(expected) or not np.sum(actual):
        return 0.0
    return float(jensenshannon(expected, actual, base=2))


def wasserstein(reference_quantiles, values):
    """Wasserstein-1 distance between a reference (its quantiles at ``quantile_levels``) and
    ``values`` (a sample of the new data), taken at the same levels."""
    from scipy.stats import wasserstein_distance

    if values.size == 0:
        return None
    return float(wasserstein_distance(reference_quantiles, np.quantile(values, quantile_levels())))


def ks_test(reference_shares, new_counts, n_reference):
    """Kolmogorov–Smirnov statistic between the reference and the new data at the reference's
    decile edges (the largest gap between their distribution functions there: exact counts on
    both sides, right for whole numbers and ties too, a lower bound of the gap anywhere), and
    its asymptotic two-sample p-value for ``n_reference`` and the new data's rows. At
    millions of rows any difference is "significant": it is only shown beside n."""
    from scipy.stats import kstwobign

    n_new = int(np.sum(new_counts))
    if n_new == 0 or n_reference == 0:
        return None, None
    gap = np.cumsum(shares(reference_shares)) - np.cumsum(shares(new_counts))
    d = float(np.max(np.abs(gap)))
    n_eff = n_reference * n_new / (n_reference + n_new)
    return d, float(kstwobign.sf(d * np.sqrt(n_eff)))


def chi2_test(reference_counts, new_counts):
    """p-value of the chi-square test that two count vectors over the same categories come
    from one distribution (categories empty on both sides left out)."""
    from scipy.stats import chi2_contingency

    table = np.array([reference_counts, new_counts], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return None
    return float(chi2_contingency(table, correction=False).pvalue)
