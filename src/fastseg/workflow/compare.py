"""Comparing algorithms on the same customers: does another algorithm segment them better than
k-means?

Every algorithm is fitted on all the rows with the same preprocessing (each model streams its
input as it always does). They are then judged on one uniform sample of ``sample_size`` rows,
in k-means' preprocessed space, so that the scores are comparable and memory stays bounded:
silhouette, Davies–Bouldin, Calinski–Harabasz, the agreement with k-means (adjusted Rand
index), and each algorithm's stability (two fits on disjoint halves of the sample, both
labelling all of it). Sizes, seconds and the peak memory NumPy allocated (``tracemalloc``)
come from the fit on every row; BIC where the model has a likelihood.
"""

import time
import tracemalloc
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from .. import config
from ..cluster import registry
from ..errors import DataError
from ..io.store import positions_within, sample_positions
from ..io.tables import TableReader
from ..metrics.scores import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)
from ..preprocess.settings import CLI_DEFAULTS

ALGORITHMS = ("kmeans", "kprototypes", "gmm", "ward", "hdbscan")
REGISTRY_NAME = {"kmeans": "lloyd", "gmm": "gmm", "ward": "ward", "hdbscan": "hdbscan"}
MARGIN = 0.01  # silhouette another algorithm must gain over k-means to be recommended


@dataclass
class AlgorithmResult:
    algorithm: str
    k: int
    silhouette: float
    davies_bouldin: float
    calinski_harabasz: float
    ari_kmeans: float
    stability: float | None
    bic: float | None
    sizes: list
    seconds: float
    peak_mb: float
    model: object = field(default=None, repr=False)

    def to_dict(self):
        """The result as JSON takes it: no model, no NaN (a score that is not defined, such
        as a silhouette of one segment, is null)."""
        doc = asdict(self)
        del doc["model"]
        return {n: None if isinstance(v, float) and v != v else v for n, v in doc.items()}


@dataclass
class Comparison:
    results: list
    recommendation: dict
    sample_rows: int

    def to_dict(self):
        return {
            "algorithms": [r.to_dict() for r in self.results],
            "recommendation": self.recommendation,
            "sample_rows": self.sample_rows,
        }

    def table(self):
        from .segments import aligned

        head = ["algorithm", "k", "silhouette", "Davies-Bouldin", "Calinski-Harabasz"]
        head += ["ARI k-means", "stability", "BIC", "s", "peak MB", "sizes"]
        rows = [head]
        for r in self.results:
            rows.append(
                [
                    r.algorithm,
                    str(r.k),
                    f"{r.silhouette:.4f}",
                    f"{r.davies_bouldin:.4f}",
                    f"{r.calinski_harabasz:,.0f}",
                    f"{r.ari_kmeans:.3f}",
                    "-" if r.stability is None else f"{r.stability:.3f}",
                    "-" if r.bic is None else f"{r.bic:,.0f}",
                    f"{r.seconds:.1f}",
                    f"{r.peak_mb:,.0f}",
                    " ".join(f"{s:,}" for s in r.sizes),
                ]
            )
        advice = self.recommendation
        return f"{aligned(rows)}\n\nrecommended: {advice['algorithm']}: {advice['reason']}"


def compare(
    data,
    k,
    *,
    columns,
    algorithms=None,
    sample_size=20_000,
    random_state=0,
    settings=None,
    **run,
):
    """Fit each of ``algorithms`` (default: all that apply; k-prototypes only with
    categorical columns) with ``k`` segments on ``data`` (``columns`` are the features;
    ``settings`` a ``PreprocessSettings``, the CLI's defaults if None), judge them on one
    sample and recommend one (see the module docstring). ``run``: memory_budget, spill_dir,
    n_threads. Returns a ``Comparison``."""
    settings = settings or CLI_DEFAULTS
    names = _chosen(algorithms, settings)
    fitted = [_fit(name, data, k, columns, settings, random_state, run) for name in names]
    sample, space, keep = _sample(fitted[0][0], data, columns, settings, sample_size, random_state)
    reference = fitted[0][0].predict(sample)
    results = [
        _judged(
            name, model, seconds, peak, sample, space, reference, k, columns, settings, random_state
        )
        for name, (model, seconds, peak) in zip(names, fitted, strict=True)
    ]
    return Comparison(results, _recommend(results), int(keep.sum()))


def _chosen(algorithms, settings):
    names = list(algorithms or ALGORITHMS)
    unknown = [n for n in names if n not in ALGORITHMS]
    if unknown:
        raise DataError(
            f"unknown algorithm(s) {', '.join(unknown)}: choose from {', '.join(ALGORITHMS)}"
        )
    if not settings.categorical and "kprototypes" in names:
        if algorithms:
            raise DataError("kprototypes compares only with categorical columns: add --categorical")
        names.remove("kprototypes")
    if "kmeans" in names:
        names.remove("kmeans")
    return ["kmeans", *names]  # k-means first: the others are measured against it


def _make(name, k, settings, random_state, run):
    if name == "kprototypes":
        from ..cluster.kprototypes import KPrototypes

        scale = "none" if settings.scale == "none" else "standard"
        return KPrototypes(
            k,
            random_state=random_state,
            scale=scale,
            missing="drop",  # the rows it can take: none with a missing value
            n_threads=run.get("n_threads"),
        )
    params = dict(random_state=random_state, n_init=3, **run, **settings.as_params())
    return registry.by_name(REGISTRY_NAME[name]).make(k, **params)


def _fit_on(model, name, data, columns, settings):
    if name != "kprototypes":
        return model.fit(data, columns=list(columns))
    categorical = list(settings.categorical)
    numeric = [c for c in columns if c not in categorical]
    return model.fit(data, categorical=categorical, columns=numeric)


def _fit(name, data, k, columns, settings, random_state, run):
    """(the model fitted on every row, seconds, peak MB NumPy and Python allocated)."""
    model = _make(name, k, settings, random_state, run)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        _fit_on(model, name, data, columns, settings)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    return model, seconds, peak


def _sample(kmeans, data, columns, settings, size, seed):
    """A uniform sample of the input's rows (raw values, the columns every model reads), the
    same rows in k-means' space, and which rows every model can label (no missing feature)."""
    reader = TableReader(data, kmeans._derivations())
    positions = sample_positions(reader.count_rows(), size, seed)
    wanted = list(dict.fromkeys([*columns, *(settings.categorical or [])]))
    frames, spaces, kept, seen = [], [], [], 0
    for batch in kmeans.iter_assign(reader, keep=wanted, nulls="skip"):
        at = positions_within(positions, seen, seen + batch.n_rows)
        frames.append(batch.kept[at])
        present = np.flatnonzero(~batch.missing)
        rank = np.searchsorted(present, at)
        rows = np.zeros((at.size, batch.scaled.shape[1]), dtype=batch.scaled.dtype)
        ok = ~batch.missing[at]
        rows[ok] = batch.scaled[rank[ok]]
        spaces.append(rows)
        kept.append(ok)
        seen += batch.n_rows
    sample = pl.concat(frames)
    keep = np.concatenate(kept)
    return sample.filter(pl.Series(keep)), np.concatenate(spaces)[keep], keep


def _labels(model, name, sample):
    """Each sample row's segment by ``model`` (k-prototypes: a null level matches no mode)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unseen levels: counted, not the point here
        if name == "kprototypes":
            sample = sample.with_columns(
                pl.col(c).cast(pl.String).fill_null("") for c in model.categories_
            )
        return np.asarray(model.predict(sample))


def _judged(name, model, seconds, peak, sample, space, reference, k, columns, settings, seed):
    labels = _labels(model, name, sample)
    distinct = np.unique(labels).size
    scores = (np.nan, np.nan, np.nan)
    if 1 < distinct < labels.size:
        scores = (
            silhouette_score(space, labels),
            davies_bouldin_score(space, labels),
            calinski_harabasz_score(space, labels),
        )
    sizes = model._fit_sizes() if hasattr(model, "_fit_sizes") else model.cluster_sizes_
    bic = getattr(model, "bic_", None)
    return AlgorithmResult(
        algorithm=name,
        k=int(getattr(model, "n_clusters", k)),
        silhouette=float(scores[0]),
        davies_bouldin=float(scores[1]),
        calinski_harabasz=float(scores[2]),
        ari_kmeans=float(adjusted_rand_score(reference, labels)),
        stability=_stability(name, k, sample, columns, settings, seed),
        bic=None if bic is None else float(bic),
        sizes=[int(s) for s in sizes],
        seconds=seconds,
        peak_mb=peak,
        model=model,
    )


def _stability(name, k, sample, columns, settings, seed):
    """Adjusted Rand index of two fits on disjoint halves of the sample, both labelling all
    of it (as select-k measures k-means); None when the sample is too small to split."""
    if sample.height < 4 * k:
        return None
    half = np.random.default_rng(seed).permutation(sample.height) < sample.height // 2
    labels = []
    for part in (sample.filter(pl.Series(half)), sample.filter(pl.Series(~half))):
        model = _make(name, k, settings, seed, {})
        try:
            _fit_on(model, name, part, columns, settings)
        except DataError:  # e.g. HDBSCAN finds no cluster in half the sample
            return None
        labels.append(_labels(model, name, sample))
    return float(adjusted_rand_score(*labels))


def _recommend(results):
    """The algorithm with the best silhouette among the stable ones, unless k-means is
    within ``MARGIN`` of it: k-means is the simplest to assign, explain and keep up."""
    level = config.stable_ari
    stable = [r for r in results if r.stability is not None and r.stability >= level]
    pool = [r for r in (stable or results) if not np.isnan(r.silhouette)]
    kmeans = results[0]
    best = max(pool, key=lambda r: r.silhouette, default=kmeans)
    if best is kmeans or best.silhouette < kmeans.silhouette + MARGIN:
        others = [r for r in pool if r is not kmeans]
        rival = max(others, key=lambda r: r.silhouette, default=None)
        said = (
            ""
            if rival is None
            else (
                f" (the best other, {rival.algorithm}, silhouette {rival.silhouette:.3f} against "
                f"{kmeans.silhouette:.3f})"
            )
        )
        return {
            "algorithm": "kmeans",
            "reason": "no algorithm separates the segments clearly "
            f"better{said}; k-means is the simplest to assign, explain and keep up",
        }
    stability = "" if best.stability is None else f", stable ({best.stability:.2f})"
    return {
        "algorithm": best.algorithm,
        "reason": f"{best.algorithm} separates the segments "
        f"better: silhouette {best.silhouette:.3f} against k-means' "
        f"{kmeans.silhouette:.3f}{stability}",
    }
