"""The one summation tree every float sum over rows follows: rows into a block's partial
(``config.BLOCK_ROWS`` rows, at fixed positions), blocks into a fragment's partial
(``config.FRAGMENT_ROWS``), fragments into the total, each level in order.

Float addition is not associative, so the tree fixes the result: threads, batch size and the
number of Dask workers only decide who computes which partial. A Dask task computes one
fragment's partial; the client adds the partials in fragment order, as the local engine does
at each fragment's end.
"""

import numpy as np

from .. import config


class FragmentSums:
    """A float64 total built from block partials in the fixed tree.

    ``add(block, rows)`` takes the next block's partial (``rows`` of them); the fragment's
    partial is added to ``total`` when a fragment's worth of rows has been seen, or at
    ``close()`` (the end of the data, or of a Dask task's fragment).
    """

    def __init__(self, shape):
        self.total = np.zeros(shape)
        self.part = np.zeros(shape)
        self.rows = 0  # rows added so far

    def add(self, block, rows):
        self.part += block
        self.rows += rows
        if self.rows % config.FRAGMENT_ROWS == 0:
            self.close()

    def close(self):
        """Add the open fragment's partial to the total (the end of the rows)."""
        self.total += self.part
        self.part[:] = 0.0
        return self.total

    @property
    def value(self):
        """The total so far, the open fragment's partial added as ``close`` would add it."""
        return self.total + self.part

    def merge(self, total):
        """Add a closed fragment's partial (its ``total``), in fragment order."""
        self.close()
        self.total += total
        return self


def rows_to_fragment_end(first_row):
    """Rows from ``first_row`` to the end of its fragment."""
    return config.FRAGMENT_ROWS - first_row % config.FRAGMENT_ROWS
