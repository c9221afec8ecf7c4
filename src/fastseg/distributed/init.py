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


def _rows(job, fragment, data):
    with tasks.on_worker():
        return tasks._rows(job, fragment, data)


def _race(job, fragment, data, state, first, key, by_cost):
    rows, w = _rows(job, fragment, data)
    if rows.shape[0] == 0:
        return (np.inf, first, None)
    return init._race_step(key, first, rows, w * state[0] if by_cost else w)


def _score(job, fragment, data, state, first, new, offset):
    """A new state (cost, nearest candidate, per-block weighted cost) with ``new`` scored."""
    rows, w = _rows(job, fragment, data)
    if state is None:
        cost, labels = np.full(rows.shape[0], np.inf), np.zeros(rows.shape[0], dtype=np.int32)
    else:
        cost, labels = state[0].copy(), state[1].copy()
    with tasks.on_worker():
        block_cost = init._score_step(rows, w, new, offset, cost, labels)
    return cost, labels, block_cost


def _block_costs(job, fragment, data, state, first):
    return state[2]


def _draw(job, fragment, data, state, first, key, factor):
    rows, w = _rows(job, fragment, data)
    return init._draw_step(key, first, rows, w, state[0], factor)


def _weights(job, fragment, data, state, first, n_candidates):
    totals = np.zeros(n_candidates, dtype=np.float64)
    kernels.add_weight_by_label(state[1], _rows(job, fragment, data)[1], totals)
    return totals
