"""k-means|| on a Dask cluster: the rows' side of ``cluster.initialization`` (draw, score,
weigh), one task per fragment, each row's cost kept on the workers between rounds.

A fragment's cost and nearest-candidate state is a persisted Dask result: each round's task
makes a new one from the last (tasks stay pure, so a lost state is computed again from its
lineage). Random numbers belong to rows, keyed by the fragment's first stored row as the
local engine keys its blocks: on Parquet without dropped rows, the same candidates as the
local k-means||.
"""

import numpy as np

from ..cluster import initialization as init
from ..cluster import kernels
from . import tasks


class DaskCandidates:
    """The candidates so far (on the client) and each fragment's row state (on workers)."""

    def __init__(self, plan, job, kept, n_features):
        self.plan, self.job = plan, job
        self.data = kept if kept is not None else plan.inputs
        self.first = np.concatenate([[0], np.cumsum(plan.kept)[:-1]]).astype(np.int64)
        self.points = np.empty((0, n_features), dtype=np.float64)
        self.states = [None] * len(plan.fragments)

    def _each(self, func, *args, persist=False):
        import dask

        call = dask.delayed(func, pure=True)
        jobs = [
            call(self.job, f, x, state, int(first), *args)
            for f, x, state, first in zip(
                self.plan.fragments, self.data, self.states, self.first, strict=True
            )
        ]
        client = self.plan.client
        return client.persist(jobs) if persist else client.gather(client.compute(jobs))

    def race(self, key, by_cost=False):
        return init._race_merge(self._each(_race, key, by_cost))

    def add(self, new):
        """Append candidates, score only them on every fragment; returns φ."""
        offset = self.points.shape[0]
        self.points = np.concatenate([self.points, new])
        self.states = self._each(_score, new, offset, persist=True)
        parts = self._each(_block_costs)
        return float(np.sum(np.concatenate(parts)))

    def draw(self, key, factor):
        return np.concatenate(self._each(_draw, key, factor))

    def weights(self):
        totals = np.zeros(self.points.shape[0], dtype=np.float64)
        for part in self._each(_weights, self.points.shape[0]):
            totals += part
        return totals


def _race(job, fragment, data, state, first, key, by_cost):
    entries = []
    with tasks.on_worker():
        for s, rows, w in tasks.chunks(job, fragment, data):
            rate = w * state[0][s : s + rows.shape[0]] if by_cost else w
            entries.append(init._race_step(key, first + s, rows, rate))
    best = (np.inf, first, None)  # the earliest time, the first chunk's on ties
    for entry in entries:
        if entry[0] < best[0]:
            best = entry
    return best


def _score(job, fragment, data, state, first, new, offset):
    """A new state (cost, nearest candidate, per-block weighted cost) with ``new`` scored."""
    costs, labels, blocks = [], [], []
    with tasks.on_worker():
        for s, rows, w in tasks.chunks(job, fragment, data):
            e = s + rows.shape[0]
            if state is None:  # the first candidate: every row's cost is yet to be known
                cost, label = np.full(e - s, np.inf), np.zeros(e - s, dtype=np.int32)
            else:
                cost, label = state[0][s:e].copy(), state[1][s:e].copy()
            blocks.append(init._score_step(rows, w, new, offset, cost, label))
            costs.append(cost)
            labels.append(label)
    if not costs:
        return np.empty(0), np.empty(0, dtype=np.int32), np.empty(0)
    return np.concatenate(costs), np.concatenate(labels), np.concatenate(blocks)


def _block_costs(job, fragment, data, state, first):
    return state[2]


def _draw(job, fragment, data, state, first, key, factor):
    with tasks.on_worker():
        found = [
            init._draw_step(key, first + s, rows, w, state[0][s : s + rows.shape[0]], factor)
            for s, rows, w in tasks.chunks(job, fragment, data)
        ]
    return np.concatenate(found) if found else tasks._no_rows(job).astype(np.float64)


def _weights(job, fragment, data, state, first, n_candidates):
    totals = np.zeros(n_candidates, dtype=np.float64)
    for s, rows, w in tasks.chunks(job, fragment, data, tasks.RAW):
        kernels.add_weight_by_label(state[1][s : s + rows.shape[0]], w, totals)
    return totals
