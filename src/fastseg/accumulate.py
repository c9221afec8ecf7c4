"""One E-step's totals (per-centre sums and weights, inertia, label changes), in block order."""

import numpy as np

from . import config, kernels


class Accumulator:
    """Buffers for ``kernels.assign_accumulate``, made once and reused by every pass.

    Rows go to the kernel in waves of whole blocks, so the per-block buffers hold at most
    ``config.accumulator_bytes`` however large the chunk or k × d; the blocks are reduced in
    order, so totals do not depend on threads, waves or chunk size.
    """

    def __init__(self, n_clusters, n_features, max_rows):
        k, d = n_clusters, n_features
        fit = max(1, config.accumulator_bytes // (8 * (k * d + k + 2)))
        blocks = min(kernels.n_blocks(max(1, max_rows)), fit)
        self.wave_rows = blocks * config.BLOCK_ROWS
        self.block_sums = np.empty((blocks, k, d))
        self.block_weights = np.empty((blocks, k))
        self.block_stats = np.empty((blocks, 2))
        self.sums = np.zeros((k, d))
        self.weight_sums = np.zeros(k)
        self.stats = np.zeros(2)  # weighted inertia, labels changed

    @property
    def inertia(self):
        return float(self.stats[0])

    @property
    def changed(self):
        return int(self.stats[1])

    def reset(self):
        self.sums[:] = 0.0
        self.weight_sums[:] = 0.0
        self.stats[:] = 0.0

    def add(self, rows, weights, centers, labels):
        """Assign ``rows`` (labels INOUT) and add their sums to the totals."""
        for s in range(0, rows.shape[0], self.wave_rows):
            e = s + self.wave_rows
            kernels.assign_accumulate(
                rows[s:e],
                weights[s:e],
                centers,
                labels[s:e],
                self.block_sums,
                self.block_weights,
                self.block_stats,
            )
            kernels.reduce_blocks(
                self.block_sums,
                self.block_weights,
                self.block_stats,
                kernels.n_blocks(rows[s:e].shape[0]),
                self.sums,
                self.weight_sums,
                self.stats,
            )

    def e_step(self, data, centers, labels):
        """Assign every row of ``data``; the totals then describe the whole pass."""
        self.reset()
        for start, rows, w in data.chunks():
            self.add(rows, w, centers, labels[start : start + rows.shape[0]])
