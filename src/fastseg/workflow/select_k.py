"""Choosing k: one model per k on data decoded once, each scored, and the knee of the inertia
curve (Kneedle) as the recommendation, with what the other criteria would pick."""

import time
from dataclasses import asdict, dataclass

import numpy as np

from ..cluster.engine import random_stream
from ..cluster.lloyd import LloydEngine
from ..errors import DataError
from ..metrics.scores import score_chunks
from ..preprocess.settings import CLI_DEFAULTS, PreprocessSettings
from ..progress import report

CRITERIA = {  # criterion: (result field, best is the largest?)
    "silhouette": ("silhouette", True),
    "Davies-Bouldin": ("davies_bouldin", False),
    "Calinski-Harabasz": ("calinski_harabasz", True),
}


@dataclass
class KScore:
    k: int
    inertia: float
    silhouette: float
    davies_bouldin: float
    calinski_harabasz: float
    n_iter: int
    seconds: float


@dataclass
class Selection:
    scores: list  # a KScore per k, k ascending
    knee: int | None  # the recommended k, or None when the inertia curve has no clear knee
    picks: dict  # criterion -> the k it rates best
    n_rows: int

    def to_dict(self):
        return {
            "n_rows": self.n_rows,
            "knee": self.knee,
            "picks": self.picks,
            "scores": [asdict(s) for s in self.scores],
        }

    def table(self):
        """The scores as aligned text, what picks each k, and the recommendation."""
        head = ["k", "inertia", "silhouette", "Davies-Bouldin", "Calinski-Harabasz", "iter", "s"]
        lines = [head + ["best by"]]
        for s in self.scores:
            chosen = (["knee"] if s.k == self.knee else []) + [
                name for name, k in self.picks.items() if k == s.k
            ]
            lines.append(
                [
                    str(s.k),
                    f"{s.inertia:.6g}",
                    f"{s.silhouette:.4f}",
                    f"{s.davies_bouldin:.4f}",
                    f"{s.calinski_harabasz:.6g}",
                    str(s.n_iter),
                    f"{s.seconds:.1f}",
                    ", ".join(chosen),
                ]
            )
        widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
        text = [
            "  ".join(v.rjust(w) for v, w in zip(row, widths, strict=False)) + "  " + row[-1]
            for row in lines
        ]
        if self.knee is None:
            text.append("\nno clear knee in the inertia curve: compare the other criteria")
        else:
            text.append(f"\nrecommended k = {self.knee} (the knee of the inertia curve)")
        return "\n".join(line.rstrip() for line in text)


def select_k(
    data,
    ks,
    *,
    columns=None,
    sample_size=10_000,
    random_state=0,
    max_iter=300,
    tol=1e-4,
    memory_budget=None,
    spill_dir=None,
    n_threads=None,
    **preprocessing,
):
    """Fit k-means for every k in ``ks`` and score each fit (see ``fastseg.metrics``).

    The data (array, frame or Parquet) is decoded once; each k's model is the one
    ``KMeans(k, random_state=random_state, ...)`` would fit on its own. ``preprocessing``
    takes the ``PreprocessSettings`` (scale, missing, log1p, derive, categorical,
    category_weight, pca; by default standardised, rows with nulls dropped, as the CLI).
    Silhouettes are taken on a sample of ``sample_size`` rows stratified by segment;
    Davies-Bouldin and Calinski-Harabasz are exact. Returns a ``Selection``.
    """
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 2:
        raise DataError("choose k from 2 up: one segment cannot be scored")
    unknown = set(preprocessing) - set(PreprocessSettings.names())
    if unknown:
        raise TypeError(f"select_k() got unexpected keyword(s): {', '.join(sorted(unknown))}")
    settings = CLI_DEFAULTS.with_changes(**preprocessing)
    engine = LloydEngine(
        n_clusters=ks[-1],
        random_state=random_state,
        max_iter=max_iter,
        tol=tol,
        memory_budget=memory_budget,
        spill_dir=spill_dir,
        n_threads=n_threads,
        **settings.as_params(),
    )
    sampler = random_stream(random_state)  # the silhouette samples
    with engine._decoded(data, None, columns) as (decoded, stream):
        after_decode = stream.get_state()  # each k starts from here, as a lone fit would
        scores = []
        for done, k in enumerate(ks):
            scores.append(_score_k(engine, decoded, k, after_decode, sample_size, sampler))
            report("select-k", done + 1, len(ks))
        n_rows = decoded.n_rows
    knee = find_knee([s.k for s in scores], [s.inertia for s in scores])
    picks = {}
    for name, (field, largest) in CRITERIA.items():
        values = np.array([getattr(s, field) for s in scores])
        picks[name] = scores[int(np.argmax(values) if largest else np.argmin(values))].k
    return Selection(scores=scores, knee=knee, picks=picks, n_rows=n_rows)


def _score_k(engine, decoded, k, random_state, sample_size, sampler):
    """Fit k clusters on the decoded rows from the random state after the decode; score it."""
    start = time.perf_counter()
    engine.n_clusters = k
    stream = np.random.RandomState()
    stream.set_state(random_state)
    engine._fit_data(decoded, stream, keep_sample=True)
    labels = engine.labels_

    def chunks(_pass):
        for first, rows, _ in decoded.chunks():
            yield rows, labels[first : first + rows.shape[0]]

    quality = score_chunks(chunks, k, decoded.n_features, sample_size, sampler)
    return KScore(
        k=k,
        inertia=engine.inertia_,
        silhouette=quality["silhouette"],
        davies_bouldin=quality["davies_bouldin"],
        calinski_harabasz=quality["calinski_harabasz"],
        n_iter=engine.n_iter_,
        seconds=time.perf_counter() - start,
    )


def find_knee(x, y, sensitivity=1.0):
    """The knee of a decreasing, convex curve by Kneedle (Satopää et al., 2011), or None.

    Both axes are scaled to [0, 1]; the difference curve is the distance below the chord
    from the first point to the last. A local maximum of it is a knee only if the curve
    drops below ``max - sensitivity × mean x step`` before the next local maximum; a
    straight or wiggly curve has none, and then there is no clear knee to report.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 3 or np.ptp(y) == 0:
        return None
    xn = (x - x[0]) / (x[-1] - x[0])
    yn = (y - y.min()) / np.ptp(y)
    diff = 1.0 - xn - yn  # distance below the chord, for a curve falling from 1 to 0
    threshold_step = sensitivity * float(np.mean(np.diff(xn)))
    maxima = [i for i in range(1, x.size - 1) if diff[i - 1] < diff[i] >= diff[i + 1]]
    for n, i in enumerate(maxima):
        threshold = diff[i] - threshold_step
        stop = maxima[n + 1] if n + 1 < len(maxima) else x.size
        if (diff[i + 1 : stop] < threshold).any():
            return int(x[i])
    return None
