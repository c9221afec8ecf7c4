"""Choosing k: one model per k on data decoded once (the best of several starts), each scored,
its stability measured, and the knee of the inertia curve (Kneedle) as the recommendation
when it is stable, with what the other criteria would pick."""

import time
from dataclasses import asdict, dataclass
from numbers import Integral

import numpy as np

from .. import config
from ..cluster.engine import random_stream
from ..cluster.lloyd import LloydEngine
from ..errors import DataError
from ..io.store import draw_sample
from ..metrics.scores import adjusted_rand_score, score_chunks
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
    stability: float | None = None  # adjusted Rand index of fits on two subsamples


@dataclass
class Selection:
    scores: list  # a KScore per k, k ascending
    knee: int | None  # the recommended k, or None when the inertia curve has no clear knee
    picks: dict  # criterion -> the k it rates best
    n_rows: int  # rows scored
    n_dropped: int = 0  # rows left out: missing features (missing="drop")

    def to_dict(self):
        return {
            "n_rows": self.n_rows,
            "n_dropped": self.n_dropped,
            "knee": self.knee,
            "picks": self.picks,
            "scores": [asdict(s) for s in self.scores],
        }

    def for_model(self, decided_by):
        """What a model fitted with ``k="auto"`` keeps of its selection (``k_selection_``, in
        its file), so the report tells the same story as the fit: the range, every k's scores
        (not the seconds: the same data and seed give the same file) and what decided."""
        doc = self.to_dict()
        for score in doc["scores"]:
            del score["seconds"]
        return {"k_range": [s.k for s in self.scores], "decided_by": decided_by, **doc}

    @classmethod
    def from_dict(cls, doc):
        """The ``Selection`` a model keeps (``for_model``), back."""
        scores = [KScore(**{"seconds": 0.0, **s}) for s in doc["scores"]]
        picks = {name: int(k) for name, k in doc["picks"].items()}
        return cls(
            scores=scores,
            knee=doc["knee"],
            picks=picks,
            n_rows=doc["n_rows"],
            n_dropped=doc.get("n_dropped", 0),
        )

    def recommended(self):
        """(k, what decided: "knee" or "silhouette", the reason in words). The knee of the
        inertia curve when its k is stable (fits on two subsamples agree: adjusted Rand index
        at least ``config.stable_ari``); else the best silhouette among the stable k (among
        all k when none is stable)."""
        level = config.stable_ari
        stable = {s.k for s in self.scores if s.stability is None or s.stability >= level}
        by_k = {s.k: s for s in self.scores}
        if self.knee is not None and self.knee in stable:
            return (
                self.knee,
                "knee",
                f"k = {self.knee}, the knee of the inertia curve"
                + (_stability_text(by_k[self.knee])),
            )
        pool = [s for s in self.scores if s.k in stable] or self.scores
        k = max(pool, key=lambda s: s.silhouette).k
        if self.knee is None:
            why = "the inertia curve has no clear knee"
        else:
            why = f"the knee, k = {self.knee}, is unstable{_stability_text(by_k[self.knee])}"
        if not stable:
            among = " (no k is stable)"
        elif len(stable) < len(self.scores):
            among = " among the stable k"
        else:
            among = ""
        return k, "silhouette", f"{why}; k = {k}, the best silhouette{among}"

    def table(self):
        """The scores as aligned text, what picks each k, and the recommendation."""
        head = ["k", "inertia", "silhouette", "Davies-Bouldin", "Calinski-Harabasz", "stability"]
        head += ["iter", "s"]
        lines = [head + ["best by"]]
        for s in self.scores:
            chosen = (["knee"] if s.k == self.knee else []) + [
                name for name, k in self.picks.items() if k == s.k
            ]
            lines.append(
                [
                    str(s.k),
                    _readable(s.inertia),
                    f"{s.silhouette:.4f}",
                    f"{s.davies_bouldin:.4f}",
                    _readable(s.calinski_harabasz),
                    "-" if s.stability is None else f"{s.stability:.3f}",
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
        k, _, why = self.recommended()
        text.append(f"\nrecommended k = {k}: {why}")
        return "\n".join(line.rstrip() for line in text)


def _stability_text(score):
    return "" if score.stability is None else f" (stability {score.stability:.2f})"


def _readable(value):
    """12,345,678 rather than 1.23457e+07; small values with 4 significant digits."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def select_k(
    data,
    ks,
    *,
    columns=None,
    sample_size=10_000,
    random_state=0,
    max_iter=300,
    tol=1e-4,
    n_init=3,
    stability_rows=20_000,
    memory_budget=None,
    spill_dir=None,
    n_threads=None,
    **preprocessing,
):
    """Fit k-means for every k in ``ks`` and score each fit (see ``fastseg.metrics``).

    The data (array, frame or Parquet) is decoded once; each k's model is the one
    ``KMeans(k, n_init=n_init, random_state=random_state, ...)`` would fit on its own: the
    best of ``n_init`` starts (one start's fit was 24 % worse than the best of ten on 200k
    customers with a categorical column, which moved the knee). A k's ``stability`` is the
    adjusted Rand index between two fits on disjoint halves of a uniform sample of
    ``2 × stability_rows`` rows, each labelling the whole sample: near 1 when the segments
    are found again whatever the customers drawn, low when they are an accident of the data.
    ``preprocessing`` takes the ``PreprocessSettings`` (scale, missing, log1p, derive, categorical,
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
        n_init=n_init,
        memory_budget=memory_budget,
        spill_dir=spill_dir,
        n_threads=n_threads,
        **settings.as_params(),
    )
    samples_seed = _samples_seed(random_state)
    with engine._decoded(data, None, columns) as (decoded, stream):
        after_decode = stream.get_state()  # each k starts from here, as a lone fit would
        scores = []
        for done, k in enumerate(ks):
            sampler = np.random.RandomState(
                np.random.SeedSequence([samples_seed, k]).generate_state(4)
            )
            score = _score_k(engine, decoded, k, after_decode, sample_size, sampler)
            score.stability = _stability(engine, decoded, k, stability_rows, samples_seed)
            scores.append(score)
            report("select-k", done + 1, len(ks))
        n_rows, n_dropped = decoded.n_rows, decoded.n_dropped
    knee = find_knee([s.k for s in scores], [s.inertia for s in scores])
    picks = {}
    for name, (field, largest) in CRITERIA.items():
        values = np.array([getattr(s, field) for s in scores])
        picks[name] = scores[int(np.argmax(values) if largest else np.argmin(values))].k
    return Selection(scores=scores, knee=knee, picks=picks, n_rows=n_rows, n_dropped=n_dropped)


def _samples_seed(random_state):
    """The seed of the silhouette samples: each k draws its own from it and k alone, so a k's
    scores do not depend on which other k are scored (they did: 0.3858, 0.3928 and 0.3904
    for k = 5 with the ranges 4:6, 5 and 2:12)."""
    if isinstance(random_state, Integral):
        return int(random_state)
    return int(random_stream(random_state).randint(2**31 - 1))


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


def _stability(engine, decoded, k, rows, seed):
    """The adjusted Rand index between k-means fits (as ``engine`` fits, on the decoded rows
    as they are) on two disjoint halves of a uniform sample, both labelling the whole sample;
    None when the sample is too small to split (fewer than 4k rows)."""
    seeds = np.random.SeedSequence([seed, k, 2]).generate_state(3)
    sample = draw_sample(decoded, 2 * rows, int(seeds[0]))[0]
    if sample.shape[0] < 4 * k:
        return None
    half = np.random.default_rng(seeds[1]).permutation(sample.shape[0]) < sample.shape[0] // 2
    labels = []
    for part, part_seed in ((sample[half], seeds[1]), (sample[~half], seeds[2])):
        fit = LloydEngine(
            k,
            random_state=int(part_seed),
            n_init=engine.n_init,
            max_iter=engine.max_iter,
            tol=engine.tol,
            n_threads=engine.n_threads,
        )
        fit.fit(part)
        labels.append(fit.predict(sample))
    return float(adjusted_rand_score(*labels))


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
