"""Segments as a business user sees them: numbered largest first, centres in original units."""

import numpy as np
import polars as pl

_CHUNK = 1 << 20  # labels handled at a time: whole-array temporaries would cost 8 bytes a row


def order_by_size(model):
    """Renumber the clusters of a fitted model so segment 0 is the largest.

    Size is the number of rows labelled with the cluster in the fit; ties keep the original
    order. Centres and ``labels_`` are permuted in place, so ``predict`` and the model file
    agree with the new numbers. Returns the old cluster index of each new segment.
    """
    sizes = label_counts(model.labels_, model.n_clusters)
    order = np.lexsort((np.arange(model.n_clusters), -sizes))
    new_id = np.empty(order.size, dtype=model.labels_.dtype)
    new_id[order] = np.arange(order.size)
    model.cluster_centers_ = model.cluster_centers_[order]
    labels = model.labels_
    for s in range(0, labels.shape[0], _CHUNK):  # in place: no full-size temporary
        labels[s : s + _CHUNK] = new_id[labels[s : s + _CHUNK]]
    for state in ("_centers", "_counts"):  # MiniBatchKMeans: so partial_fit keeps the order
        if hasattr(model, state):
            setattr(model, state, getattr(model, state)[order])
    return order


def label_counts(labels, k):
    """Rows per label, counted a chunk at a time (``np.bincount`` would copy all the labels)."""
    counts = np.zeros(k, dtype=np.int64)
    for s in range(0, labels.shape[0], _CHUNK):
        counts += np.bincount(labels[s : s + _CHUNK], minlength=k)
    return counts


def centers_in_original_units(model):
    """Centres with the fitted scaling undone: in dollars, years, GB, as in the input."""
    centers = np.asarray(model.cluster_centers_, dtype=np.float64)
    if model.scale_std_ is None:
        return centers
    return centers * model.scale_std_ + model.scale_mean_


def segment_table(model):
    """One row per segment: id, size, share and the centre of every feature in original units."""
    sizes = label_counts(model.labels_, model.n_clusters)
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
        columns[str(name)] = centers[:, j]
    return pl.DataFrame(columns)


def format_segment_table(table):
    """The segment table as text, one column per segment (readable for the usual k <= 12)."""
    rows = [
        ["", *[f"segment {s}" for s in table["segment"]]],
        ["size", *[f"{v:,}" for v in table["size"]]],
        ["share", *[f"{v:.1%}" for v in table["share"]]],
    ]
    for name in table.columns[3:]:
        rows.append([name, *[number_text(v) for v in table[name]]])
    return aligned(rows)


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
