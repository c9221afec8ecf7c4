"""The main job, as ``fastseg fit`` runs it: segment the rows of Parquet file(s), number the
segments largest first (or as a previous model numbered them), write the labelled rows and
the model file.

Every output path and the labels request are checked before any long work, and the outputs
are published together once all are complete: a model on disk means the whole run succeeded.
It runs the engines under the estimators, so it never imports scikit-learn.
"""

import os
import time
from dataclasses import dataclass

import numpy as np

from ..cluster import registry
from ..cluster.modelfile import load_engine
from ..errors import FastsegError
from ..io.output import Outputs, input_files
from ..preprocess.settings import PreprocessSettings
from . import segments
from .labels import check_labels_request, write_labels

DEFAULT_K_RANGE = tuple(range(2, 13))


@dataclass
class FitResult:
    model: object  # the fitted engine, segments numbered largest first or as the previous model
    k: int  # its number of segments (chosen by select-k when k="auto")
    seconds: float  # the fit alone
    moved: np.ndarray | None = None  # with align_to: how far each previous centre moved
    rows_written: int = 0  # with labels: rows in the labels file
    rows_unlabelled: int = 0  # ... of which without a segment (missing features)


def _silent(text):
    pass


def fit_segments(
    data,
    k,
    *,
    features,
    settings=None,
    algorithm="lloyd",
    k_range=DEFAULT_K_RANGE,
    align_to=None,
    labels=None,
    keep=None,
    model=None,
    overwrite=False,
    seed=0,
    n_init=1,
    init="k-means++",
    max_iter=None,
    memory_budget=None,
    spill_dir=None,
    n_threads=None,
    cluster=None,
    say=_silent,
):
    """Fit ``k`` segments (or ``k="auto"``: the knee of select-k over ``k_range``) on the
    ``features`` columns of ``data`` and return a ``FitResult``.

    ``settings`` is a ``PreprocessSettings`` (default: the library's). ``align_to``, a model
    file or a fitted model of the same features, keeps its segment numbers. ``labels`` is a
    Parquet file to write the input rows (or the ``keep`` columns) plus a segment to;
    ``model`` a model file to write. ``init`` is "k-means++", "random" or "k-means||" (all
    rows, not a sample). ``say`` is told which k ``k="auto"`` chose. ``cluster``: fit on
    Dask, a dict of ``fit``'s ``client`` and ``persist`` (``distributed.cluster.connected``).
    """
    settings = settings or PreprocessSettings()
    if cluster is not None:
        check_dask_request(k, algorithm)
    if algorithm == "kprototypes":
        check_kprototypes_request(k, settings, align_to, init)
    outputs = _check_outputs(data, features, settings, labels, keep, model, overwrite, align_to)
    previous = _previous_model(align_to)
    memory = dict(memory_budget=memory_budget, spill_dir=spill_dir, n_threads=n_threads)
    _check_alignment(previous, features, max(k_range) if k == "auto" else k, settings)
    selection = None
    if k == "auto":
        k, selection = choose_k(
            data, k_range, features, settings, seed, max_iter, say=say, **memory
        )
        _check_alignment(previous, features, k, settings)
    max_iter = max_iter or registry.by_name(algorithm).max_iter
    params = dict(random_state=seed, n_init=n_init, max_iter=max_iter, **memory)
    engine = registry.by_name(algorithm).make(k, init=init, **params, **settings.as_params())
    fit_args = dict(columns=features)
    if algorithm == "kprototypes":  # the categorical columns are read apart from the numbers
        numeric = [f for f in features if f not in settings.categorical]
        fit_args = dict(categorical=settings.categorical, columns=numeric)
    elif cluster is not None:
        fit_args.update(backend="dask", **cluster)
    start = time.perf_counter()
    engine.fit(data, **fit_args)
    result = FitResult(engine, engine.n_clusters, time.perf_counter() - start)  # (HDBSCAN: found)
    if selection is not None:  # the report tells the same story
        engine.k_selection_ = selection
    segments.order_by_size(engine)
    if previous is not None:
        result.moved = segments.align_to(engine, previous)
    with outputs:  # published together once both are complete, or neither
        if labels:
            fitted = cluster is None  # a Dask fit's labels stay on the cluster: assigned again
            written = write_labels(engine, data, labels, keep=keep, fitted=fitted, outputs=outputs)
            result.rows_written, result.rows_unlabelled = written
        if model:
            with outputs.file(model) as tmp, open(tmp, "w") as f:
                f.write(engine.to_json())
        outputs.publish()
    return result


def check_dask_request(k, algorithm="lloyd"):
    """What a Dask fit cannot do yet (checked before a cluster starts)."""
    if k == "auto":
        raise FastsegError("--k auto does not run on Dask yet: give --k")
    if algorithm == "kprototypes":
        raise FastsegError("--algorithm kprototypes does not run on Dask yet: leave out --workers")


def check_kprototypes_request(k, settings, align_to, init):
    """What ``--algorithm kprototypes`` cannot do (checked before any work): it reads the
    numbers and the categories as they are, so none of the k-means preprocessing but the
    standard scaling and dropping rows with missing values."""
    from ..cluster.kprototypes import MISSING, SCALES

    if not settings.categorical:
        raise FastsegError(
            "--algorithm kprototypes needs --categorical COLUMNS (numbers only: use lloyd)"
        )
    refused = {
        "--k auto": k == "auto",
        "--align-to": align_to is not None,
        f"--init {init}": init != "k-means++",
        "--derive": bool(settings.derive),
        "--log1p": bool(settings.log1p),
        "--pca": settings.pca is not None,
        "--category-weight": settings.category_weight is not None,
        f"--scale {settings.scale}": settings.scale not in SCALES,
        f"--missing {settings.missing}": settings.missing not in MISSING,
    }
    given = [option for option, used in refused.items() if used]
    if given:
        raise FastsegError(
            f"--algorithm kprototypes does not take {', '.join(given)} (it takes --scale "
            "standard or none, --missing drop or error, --n-init, --max-iter, --seed)"
        )


def _check_outputs(data, features, settings, labels, keep, model, overwrite, align_to=None):
    """Fail before any work if the outputs cannot be written (or are inputs, or one path for
    two outputs) or the labels not made; returns the run's ``Outputs``."""
    inputs = input_files(data, align_to if isinstance(align_to, str | os.PathLike) else None)
    outputs = Outputs(overwrite=overwrite, inputs=inputs)
    for path in (labels, model):
        if path:
            outputs.check(path)
    if keep and not labels:
        raise FastsegError("--keep chooses the columns of --labels output: add --labels FILE")
    if labels:  # a categorical column named among the features is one-hot, not a number
        numeric = [f for f in features if f not in (settings.categorical or [])]
        check_labels_request(data, numeric, keep, settings.derive)
    return outputs


def _check_alignment(previous, features, k, settings):
    """Before any work, whether the previous model's numbers can be kept (if there is one)."""
    if previous is not None:
        segments.check_alignment(previous, features, k, settings.categorical)


def _previous_model(align_to):
    """The model whose segment numbers to keep: loaded if given as a file."""
    if align_to is None or not isinstance(align_to, str | os.PathLike):
        return align_to
    return load_engine(align_to)


def choose_k(data, k_range, features, settings, seed=0, max_iter=None, *, say=_silent, **memory):
    """``k="auto"``: the knee of select-k's inertia curve over ``k_range`` when its k is stable,
    else the best silhouette among the stable k (``Selection.recommended``); ``say`` is told
    which and why. Returns (k, the selection as the model keeps it).
    ``memory``: memory_budget, spill_dir, n_threads."""
    from .select_k import select_k  # scores: imported only when asked for

    selection = select_k(
        data,
        k_range,
        columns=features,
        random_state=seed,
        max_iter=max_iter or registry.by_name("lloyd").max_iter,
        **settings.as_params(),
        **memory,
    )
    k, decided_by, why = selection.recommended()
    say(f"--k auto: {why}")
    return k, selection.for_model(decided_by)
