"""Segments as a business user sees them: numbered largest first, centres in original units."""

import numpy as np
import polars as pl

from .. import config
from ..errors import DataError


def order_by_size(model):
    """Renumber the clusters of a fitted model so segment 0 is the largest.

    Size is the number of rows labelled with the cluster in the fit; ties keep the original
    order. Returns the old cluster index of each new segment (see ``renumber``).
    """
    sizes = model._fit_sizes()
    order = np.lexsort((np.arange(model.n_clusters), -sizes))
    renumber(model, order)
    return order


def renumber(model, order):
    """Make old cluster ``order[i]`` segment i of a fitted model.

    Centres and ``labels_`` are permuted in place, so ``predict`` and the model file agree
    with the new numbers.
    """
    new_id = np.empty(order.size, dtype=model.labels_.dtype)
    new_id[order] = np.arange(order.size)
    model.cluster_centers_ = model.cluster_centers_[order]
    if getattr(model, "cluster_sizes_", None) is not None:
        model.cluster_sizes_ = model.cluster_sizes_[order]
    labels = model.labels_
    if not isinstance(labels, np.ndarray):  # a Dask fit's lazy labels: renumbered when computed
        model.labels_ = labels.map_partitions(_renumbered, new_id, meta=labels._meta)
        return _renumber_state(model, order)
    chunk = config.label_chunk_rows
    for s in range(0, labels.shape[0], chunk):  # in place: no full-size temporary
        labels[s : s + chunk] = new_id[labels[s : s + chunk]]
    _renumber_state(model, order)


def _renumber_state(model, order):
    if hasattr(model, "_renumber_components"):  # a mixture's weights, k-prototypes' modes
        model._renumber_components(order)
    if getattr(model, "reference_", None) is not None:  # its per-segment figures
        model.reference_ = model.reference_.renumbered(order)
    for state in ("_centers", "_counts"):  # MiniBatchKMeans: so partial_fit keeps the order
        if hasattr(model, state):
            setattr(model, state, getattr(model, state)[order])


def _renumbered(labels, new_id):
    """A pandas Series of labels renumbered (-1, no segment, kept)."""
    return labels.where(labels < 0, new_id[labels.clip(lower=0).to_numpy()])


def check_alignment(previous, features, k, categorical=None):
    """Fail before any work if a model of ``k`` segments on ``features`` (and ``categorical``
    columns) cannot take the previous model's segment numbers."""
    names = previous._plain_features()
    before = sorted(previous.categorical or [])
    if sorted(names) != sorted(features) or before != sorted(categorical or []):
        shown = ", ".join(names + [f"{c} (categorical)" for c in before]) or "unnamed"
        raise DataError(
            f"the previous model's features ({shown}) are not these "
            f"({', '.join(list(features) + [f'{c} (categorical)' for c in categorical or []])})"
            ": align to a model of the same features"
        )
    if k < previous.n_clusters:
        raise DataError(
            f"the previous model has {previous.n_clusters} segments and this one {k}: "
            "segment numbers can be kept only with as many segments or more"
        )


def align_to(model, previous):
    """Number the segments of a fitted model after those of a previous model of the same
    features, so that segment 3 stays the same kind of customer from one fit to the next.

    Segments are paired by the Hungarian method on the squared distances between centres,
    taken in the new model's space: the previous centres, in original units, go through the
    new model's log1p, scaling, one-hot weights and PCA. With more segments than before, the
    unpaired ones take the next numbers, largest first. Returns the distance each previous
    segment's centre moved (in its number order).
    """
    from scipy.optimize import linear_sum_assignment

    names = [str(n) for n in model.feature_names_in_]
    plain = model._plain_features()
    check_alignment(previous, plain, model.n_clusters, model.categorical)
    old_names = [str(n) for n in previous.feature_names_in_]
    old = centers_in_original_units(previous)
    before = np.zeros((previous.n_clusters, len(names)))
    for j, name in enumerate(names):  # a level new since then: a share of 0 before
        if name in old_names:
            before[:, j] = old[:, old_names.index(name)]
    before = model.preprocessor_.forward_original(before)
    now = np.asarray(model.cluster_centers_, dtype=np.float64)
    cost = ((now[:, None, :] - before[None, :, :]) ** 2).sum(axis=2)
    new, old_ids = linear_sum_assignment(cost)
    order = np.empty(model.n_clusters, dtype=np.int64)
    order[old_ids] = new
    sizes = model._fit_sizes()
    rest = np.setdiff1d(np.arange(model.n_clusters), new)
    order[previous.n_clusters :] = rest[np.lexsort((rest, -sizes[rest]))]
    renumber(model, order)
    return np.sqrt(cost[new, old_ids][np.argsort(old_ids)])


def centers_in_original_units(model):
    """Centres with the fitted preprocessing undone: in dollars, years, GB, as in the input."""
    return model.preprocessor_.inverse(model.cluster_centers_)


def segment_table(model):
    """One row per segment: id, size, share and the centre of every feature in original units."""
    sizes = model._fit_sizes()
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        names = [f"x{j}" for j in range(model.n_features_in_)]
    centers = centers_in_original_units(model)
    columns = {
        "segment": np.arange(model.n_clusters),
        "size": sizes,
        "share": sizes / max(1, sizes.sum()),
    }
    for j, name in enumerate(names):
        # a feature may be called "size", "share" or "segment": its centre must not replace them
        columns[f"{name} (feature)" if str(name) in columns else str(name)] = centers[:, j]
    return pl.DataFrame(columns)


def format_segment_table(table, shares=(), centres=()):
    """The segment table as text, one column per segment (readable for the usual k <= 12).

    ``shares``: features shown as percentages (a category's share of the segment);
    ``centres``: features whose row is labelled "(centre)" (log1p: not a mean)."""
    rows = [
        ["", *[f"segment {s}" for s in table["segment"]]],
        ["size", *[f"{v:,}" for v in table["size"]]],
        ["share", *[f"{v:.1%}" for v in table["share"]]],
    ]
    for name in table.columns[3:]:
        feature = name.removesuffix(" (feature)")
        show = (lambda v: f"{v:.1%}") if feature in shares else number_text
        if table[name].dtype == pl.String:  # a k-prototypes mode: a level
            show = str
        label = f"{name} (centre)" if feature in centres else name
        rows.append([label, *[show(v) for v in table[name]]])
    return aligned(rows)


def segment_summary(model):
    """What ``fastseg fit`` prints: the segment table with category shares in percent, and
    what a log1p feature's number is (its centre taken back from the log scale, which
    ``fastseg profile``'s arithmetic means do not equal). A k-prototypes model shows the
    numeric means and each categorical column's mode."""
    if hasattr(model, "modes_"):
        table = model.centers_in_original_units()
        sizes = table["size"].to_numpy()
        table = table.insert_column(2, pl.Series("share", sizes / max(1, sizes.sum())))
        return format_segment_table(
            table.rename({c: f"{c} (mode)" for c in model.categorical_columns_})
        )
    pre = model.preprocessor_
    names = pre.feature_names or [f"x{j}" for j in range(pre.n_features)]
    shares = [names[j] for j in pre.one_hot_indices()]
    logged = [names[j] for j in pre.log1p_columns]
    text = format_segment_table(segment_table(model), shares=shares, centres=logged)
    if logged:
        text += (
            f"\n({', '.join(logged)}: the centre taken back from the log scale, near a geometric "
            "mean; fastseg profile shows each segment's arithmetic mean)"
        )
    return text


def aligned(rows):
    """Rows of strings as text: the first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        )
        for r in rows
    )


def number_text(v):
    """A value with as many decimals as a reader needs: 12,345 · 123.4 · 1.23."""
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.1f}"
    return f"{v:.2f}"
