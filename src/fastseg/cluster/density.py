"""HDBSCAN at any size: scikit-learn's HDBSCAN on a uniform sample of the decoded rows, its
labels extended to every other row by the nearest of a few thousand stored sample points.

HDBSCAN's minimum spanning tree takes time quadratic in the rows (Prim's algorithm over the
mutual-reachability distances: 8.5 s for 50,000 five-feature rows on two cores, 170 s for
200,000), so it cannot run on millions of rows; a density found on a 200,000-row sample,
though, is the density of the whole. ``min_samples`` defaults to 10, not scikit-learn's
``min_cluster_size`` (1,000 at 200,000 rows): with that, scikit-learn held 1,000 neighbour
distances a row (over 3 GB) and the fit took 300 s; with 10, 170 s and 0.5 GB at peak.

Rows are then labelled by the nearest stored point (at most ``max_stored``, drawn from the
sample label by label so every segment keeps some), which draws each segment's border where
the sample drew it.

Noise (scikit-learn's -1) is a segment of its own, numbered after the clusters: a fit finding
k clusters and some noise has ``n_clusters == k + 1`` and ``noise_segment_ == k`` (after
``fastseg fit`` numbers segments largest first, ``noise_segment_`` says where it went). The
number of segments is found, not given: ``requested_k`` (what ``fastseg fit --k`` asks for)
is accepted and ignored.
"""

from numbers import Integral

import numpy as np

from .. import config
from ..errors import DataError, FastsegError
from ..io.store import anonymous_array
from .engine import Engine
from .reduction import FragmentSums

SAMPLE_SIZE = 200_000  # rows HDBSCAN runs on: minutes (see the module docstring)
MAX_STORED = 10_000  # sample points the model keeps to label other rows by
MIN_CLUSTER_SHARE = 0.005  # the default min_cluster_size: this share of the sample rows...
MIN_CLUSTER_FLOOR = 5  # ... but at least scikit-learn's default
MIN_SAMPLES = 10  # neighbours of a core point (None: min_cluster_size, as scikit-learn)


class HDBSCANEngine(Engine):
    """HDBSCAN on a sample, extended to every row (see the module docstring), without
    scikit-learn's API (what ``fastseg fit --algorithm hdbscan`` runs; the fit itself imports
    scikit-learn's HDBSCAN)."""

    estimator_name = "HDBSCAN"
    # requested_k never changes the result (HDBSCAN finds k): left out of the model file too.
    _run_settings = (*Engine._run_settings, "batch_size", "requested_k")
    _n_segments = 1  # segments of the last fit (``n_clusters``); 1 before any

    def __init__(
        self,
        min_cluster_size=None,
        *,
        min_samples=MIN_SAMPLES,
        sample_size=SAMPLE_SIZE,
        max_stored=MAX_STORED,
        random_state=None,
        requested_k=None,
        batch_size=None,
        memory_budget=None,
        n_threads=None,
        verbose=0,
        scale="none",
        log1p=None,
        derive=None,
        pca=None,
        categorical=None,
        category_weight=None,
        missing="error",
        spill_dir=None,
    ):
        self._keep_params(locals())

    @property
    def n_clusters(self):
        """Segments the last fit found, the noise segment included (HDBSCAN finds k)."""
        return self._n_segments

    def _sample_size(self):
        """The uniform sample HDBSCAN runs on (the init sample of the decode pass)."""
        return self.sample_size

    def fit(
        self,
        X,
        y=None,
        sample_weight=None,
        *,
        columns=None,
        backend=None,
        client=None,
        persist=None,
    ):
        """Cluster a uniform sample of X (an array, a pandas/polars/Arrow table, or data files
        with ``columns``) by HDBSCAN, then label every row by its nearest stored point.
        HDBSCAN takes no sample weights, and runs on one machine (no Dask)."""
        if self._on_dask(X, backend, sample_weight) or client is not None or persist:
            raise FastsegError("HDBSCAN runs on one machine: fit it without a Dask cluster")
        if sample_weight is not None:
            raise DataError("HDBSCAN takes no sample weights: fit without sample_weight")
        with self._decoded(X, None, columns) as (data, random_state):
            self._fit_data(data, random_state)
        return self

    def _fit_data(self, data, random_state):
        """HDBSCAN on the sample, the stored points and centres, then every row's label."""
        rows, _ = data.init_rows()
        sample = np.array(rows, dtype=np.float64)  # HDBSCAN's dtype, and our own copy
        data.release_sample()
        with self._timed("hdbscan"):
            segment = self._cluster_sample(sample)
        k = self._n_segments
        keep = stratified(segment, k, self.max_stored, random_state)
        self.stored_points_ = sample[keep]
        self.stored_labels_ = segment[keep]
        self.cluster_centers_ = segment_means(sample, segment, k).astype(data.dtype)
        self._n_features_out = k
        with self._timed("labels"):
            self._label_rows(data)

    def _cluster_sample(self, sample):
        """scikit-learn's HDBSCAN on the sample; returns each sample row's segment (clusters
        0..k-1 as scikit-learn numbers them, noise k) and sets what the fit found."""
        from sklearn.cluster import HDBSCAN  # only a fit needs it (the CLI's predict does not)

        n = sample.shape[0]
        size = self.min_cluster_size or max(MIN_CLUSTER_FLOOR, round(MIN_CLUSTER_SHARE * n))
        neighbours = size if self.min_samples is None else self.min_samples
        if n < 2 or neighbours > n:
            raise DataError(
                f"HDBSCAN needs more rows than min_samples ({neighbours}); the sample has {n}"
            )
        raw = (
            HDBSCAN(
                min_cluster_size=size,
                min_samples=self.min_samples,
                n_jobs=-1 if self.n_threads is None else self.n_threads,
                copy=False,
            )
            .fit(sample)
            .labels_
        )
        clusters = np.unique(raw[raw >= 0])
        k = clusters.size
        segment = np.full(n, k, dtype=np.int32)
        segment[raw >= 0] = np.searchsorted(clusters, raw[raw >= 0])
        noise = bool((raw < 0).any())
        self.noise_segment_ = k if noise else None
        self._n_segments = k + noise
        self.min_cluster_size_ = int(size)
        self.n_sample_rows_ = int(n)
        if self.verbose:
            print(f"HDBSCAN: {k} clusters, {int((raw < 0).sum())} noise rows of {n} sampled")
        return segment

    def _label_rows(self, data):
        """Label every row by its nearest stored point, in one streaming pass; the inertia is
        the sum of squared distances to that point (what ``score`` and predict measure)."""
        labels = anonymous_array(data.n_rows, np.int32)
        sums = FragmentSums(1)
        B = config.BLOCK_ROWS
        for start, rows, _ in data.chunks():
            dist = np.empty(rows.shape[0])
            self._nearest(rows, labels[start : start + rows.shape[0]], dist)
            for s in range(0, rows.shape[0], B):  # in the fixed tree: any batch size, one sum
                sums.add(dist[s : s + B].sum(), dist[s : s + B].shape[0])
        self.labels_ = labels
        self.inertia_ = float(sums.close()[0])
        self.n_iter_ = 1  # one HDBSCAN run, then one labelling pass

    # ----- prediction --------------------------------------------------------------------
    def _nearest(self, rows, labels, distances):
        """Each row's segment: that of its nearest stored point, and the squared distance to
        that point (``labels``, ``distances`` OUT), not to the segment's centre."""
        points = self.stored_points_
        cached = self.__dict__.get("_kdtree")
        if cached is None or cached[0] is not points:  # built once per set of points
            from scipy.spatial import cKDTree

            cached = (points, cKDTree(points))
            self._kdtree = cached
        if rows.shape[0] == 0:
            return
        workers = -1 if self.n_threads is None else self.n_threads
        _, index = cached[1].query(rows, k=1, workers=workers)
        labels[:] = self.stored_labels_[index]
        gap = rows - points[index]  # exact squared distances (the tree's are rooted)
        distances[:] = np.einsum("ij,ij->i", gap, gap)

    def _renumber_components(self, order):
        """Make old segment ``order[i]`` segment i in the stored labels and the noise segment
        (what renumbering must do besides ``cluster_centers_`` and ``labels_``)."""
        new_id = np.empty(order.size, dtype=np.int32)
        new_id[order] = np.arange(order.size)
        self.stored_labels_ = new_id[self.stored_labels_]
        if self.noise_segment_ is not None:
            self.noise_segment_ = int(new_id[self.noise_segment_])

    # ----- the model file ----------------------------------------------------------------
    def to_dict(self):
        """The model file's document: the shared fields (``Engine.to_dict``'s) plus
        "density", the stored points and labels predict needs."""
        doc = super().to_dict()
        doc["density"] = {
            "points": self.stored_points_.tolist(),
            "labels": self.stored_labels_.tolist(),
            "noise_segment": self.noise_segment_,
            "min_cluster_size": self.min_cluster_size_,
            "n_sample_rows": self.n_sample_rows_,
        }
        return doc

    def _restore(self, doc):
        """The shared fields (``Engine._restore``), then the stored points, each checked:
        finite, in the centres' space, every segment with at least one."""
        density = doc["density"]
        self._n_segments = len(doc["cluster_centers"])  # what the shared checks expect
        super()._restore(doc)
        k, d = self.cluster_centers_.shape
        points = np.asarray(density["points"], dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != d or not np.isfinite(points).all():
            raise ValueError(f"the stored points must be rows of {d} finite values")
        if np.abs(points).max(initial=0.0) > 1e150:
            raise ValueError("the stored points hold values beyond 1e150")
        labels = np.asarray(density["labels"])
        if labels.shape != (points.shape[0],) or labels.dtype.kind not in "iu":
            raise ValueError("the stored labels must be one whole number per stored point")
        if labels.size == 0 or labels.min() < 0 or labels.max() >= k:
            raise ValueError(f"the stored labels must be segments 0 to {k - 1}")
        if (np.bincount(labels, minlength=k) == 0).any():
            raise ValueError("every segment must keep at least one stored point")
        noise = density["noise_segment"]
        if noise is not None and not (_whole(noise) and 0 <= noise < k):
            raise ValueError(f"noise_segment must be null or a segment 0 to {k - 1}")
        for name in ("min_cluster_size", "n_sample_rows"):
            if not (_whole(density[name]) and density[name] >= 1):
                raise ValueError(f"the density's {name} must be a positive whole number")
        self.stored_points_ = points
        self.stored_labels_ = labels.astype(np.int32)
        self.noise_segment_ = noise
        self.min_cluster_size_ = density["min_cluster_size"]
        self.n_sample_rows_ = density["n_sample_rows"]


def stratified(labels, k, m, random_state):
    """Sorted positions of the points to keep: all when there are at most ``m``; else one of
    each of the ``k`` labels plus the other ``m - k`` shared in proportion to the labels' sizes
    (rounded down), each label's drawn uniformly. At most ``max(m, k)`` points."""
    n = labels.size
    if n <= m:
        return np.arange(n)
    sizes = np.bincount(labels, minlength=k)
    spare = max(m - k, 0)
    quota = 1 + (spare * (sizes - 1)) // max(n - k, 1)  # (sizes - 1) / (n - k) <= 1: fits
    groups = np.split(np.argsort(labels, kind="stable"), np.cumsum(sizes)[:-1])
    keep = [random_state.choice(g, q, replace=False) for g, q in zip(groups, quota, strict=True)]
    return np.sort(np.concatenate(keep))


def segment_means(rows, segment, k):
    """Mean of each segment's rows (float64): the centres profiles and reports show."""
    sums = np.zeros((k, rows.shape[1]))
    np.add.at(sums, segment, rows)
    return sums / np.bincount(segment, minlength=k)[:, None]


def _whole(value):
    return isinstance(value, Integral) and not isinstance(value, bool)
