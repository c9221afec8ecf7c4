"""Ward's hierarchical clustering at any size, in two stages: k-means to about a thousand
micro-clusters on the init sample, size-weighted Ward on their centres (scikit-learn's
``AgglomerativeClustering`` takes no sample weights, and would need O(n²) memory on the rows
themselves), then one k-means consolidation pass over every row from the Ward centres.

The result is a set of centres, so a Ward model predicts, profiles, drifts and saves like a
k-means model; the agglomeration only decides where they start.
"""

import numpy as np

from .lloyd import LloydEngine

MICRO_CLUSTERS = 1000  # micro-clusters the init sample is cut into before Ward merges them
MICRO_SAMPLE = 100_000  # rows of the init sample the micro-clusters are fitted on


class WardEngine(LloydEngine):
    """Two-stage Ward (see the module docstring): ``n_micro`` micro-clusters of the init
    sample by k-means, merged by size-weighted Ward into ``n_clusters`` groups whose weighted
    means start ``max_iter`` Lloyd passes over every row (default 1: the consolidation)."""

    estimator_name = "Ward"

    def __init__(
        self,
        n_clusters=8,
        *,
        n_micro=MICRO_CLUSTERS,
        init="ward",
        n_init=1,
        max_iter=1,
        tol=1e-4,
        random_state=None,
        batch_size=None,
        memory_budget=None,
        n_threads=None,
        verbose=0,
        init_size=None,
        scale="none",
        log1p=None,
        derive=None,
        pca=None,
        categorical=None,
        category_weight=None,
        missing="error",
        spill_dir=None,
        algorithm="auto",
    ):
        params = {k: v for k, v in locals().items() if k not in ("self", "n_micro", "__class__")}
        super().__init__(**params)  # LloydEngine's parameters, then Ward's own
        self.n_micro = n_micro

    def _sample_size(self):
        """The init sample (``init_size`` rows): what the micro-clusters are made of."""
        return max(self.n_clusters, self.init_size or self._default_init_size())

    def _n_starts(self):
        return 1  # the agglomeration is deterministic given the micro-clusters

    def _init_centers(self, data, random_state):
        """The Ward centres: micro-clusters of the init sample (k-means, random start: they
        only need to cover the data), merged by size-weighted Ward, their weighted means."""
        rows, w = data.init_rows()
        if rows.shape[0] > MICRO_SAMPLE:  # k-means with k = 1000 on 100,000 rows: seconds
            keep = np.sort(random_state.choice(rows.shape[0], MICRO_SAMPLE, replace=False))
            rows, w = rows[keep], w[keep]
        m = int(min(self.n_micro, max(self.n_clusters, rows.shape[0] // 2)))
        micro = LloydEngine(
            m, init="random", max_iter=20, random_state=random_state, n_threads=self.n_threads
        ).fit(np.ascontiguousarray(rows), sample_weight=w)
        sizes = np.bincount(micro.labels_, weights=w, minlength=m)
        centers = np.asarray(micro.cluster_centers_, dtype=np.float64)
        used = sizes > 0
        groups = weighted_ward(centers[used], sizes[used], self.n_clusters)
        return _group_means(centers[used], sizes[used], groups, self.n_clusters)


def weighted_ward(points, weights, k):
    """Cut the size-weighted Ward tree of ``points`` (each standing for ``weights`` rows) at
    ``k`` groups; returns each point's group (0..k-1, in order of first appearance).

    Merging A and B costs the rise in within-group squared error, w_A w_B / (w_A + w_B) ×
    ||c_A - c_B||²; the cheapest pair is merged until k groups are left (ties: the lowest
    pair). Each group keeps its nearest partner, so a merge updates O(groups) costs."""
    points = np.array(points, dtype=np.float64)
    weights = np.array(weights, dtype=np.float64)
    n = points.shape[0]
    alive = np.ones(n, dtype=bool)
    owner = np.arange(n)  # the group each point belongs to (a group is named by a point)
    near, cost = np.empty(n, dtype=np.int64), np.empty(n)
    for i in range(n):
        near[i], cost[i] = _nearest_partner(points, weights, alive, i)
    for _ in range(n - k):
        i = int(np.argmin(np.where(alive, cost, np.inf)))
        j = int(near[i])
        i, j = min(i, j), max(i, j)
        total = weights[i] + weights[j]
        points[i] = (weights[i] * points[i] + weights[j] * points[j]) / total
        weights[i], alive[j] = total, False
        owner[owner == j] = i
        others = np.flatnonzero(alive)
        others = others[others != i]
        to_i = _ward_cost(points, weights, i, others)  # the merged group is nearer to some
        closer = (to_i < cost[others]) | ((to_i == cost[others]) & (i < near[others]))
        near[others[closer]], cost[others[closer]] = i, to_i[closer]
        stale = others[((near[others] == i) & ~closer) | (near[others] == j)]
        for g in [i, *stale.tolist()]:  # partners lost to the merge: search again
            near[g], cost[g] = _nearest_partner(points, weights, alive, g)
    _, groups = np.unique(owner, return_inverse=True)
    return _in_order_of_appearance(groups)


def _nearest_partner(points, weights, alive, i):
    """(the living group that merges with i most cheaply, that cost); (-1, inf) if none."""
    others = np.flatnonzero(alive)
    others = others[others != i]
    if others.size == 0:
        return -1, np.inf
    costs = _ward_cost(points, weights, i, others)
    best = int(np.argmin(costs))
    return int(others[best]), float(costs[best])


def _ward_cost(points, weights, i, others):
    squared = ((points[others] - points[i]) ** 2).sum(axis=1)
    return weights[i] * weights[others] / (weights[i] + weights[others]) * squared


def _in_order_of_appearance(groups):
    order = {}
    for g in groups:
        order.setdefault(int(g), len(order))
    return np.array([order[int(g)] for g in groups], dtype=np.int64)


def _group_means(points, weights, groups, k):
    """The weighted mean of each group's points: the consolidation pass's starting centres."""
    sums = np.zeros((k, points.shape[1]))
    np.add.at(sums, groups, weights[:, None] * points)
    return sums / np.bincount(groups, weights=weights, minlength=k)[:, None]
