"""A one-file HTML report of a segmentation: how k was chosen, the segments and what sets
them apart, with the plots embedded (matplotlib, the ``report`` extra)."""

import base64
import html
import io

import numpy as np

from .. import config
from ..errors import FastsegError
from ..io.output import atomic_output, check_output_path, input_files
from ..preprocess.settings import PreprocessSettings
from .profile import format_profile, segment_stats
from .select_k import select_k


def write_report(
    model,
    data,
    out,
    *,
    ks=range(2, 13),
    sample_size=10_000,
    random_state=0,
    overwrite=False,
    memory_budget=None,
    spill_dir=None,
):
    """Write ``out``: select-k over ``ks`` on ``data`` (elbow, knee, metrics by k), and for
    ``model`` its segment sizes, centroid z-score heat map, 2-D PCA scatter of a sample,
    feature distributions by segment and profile table. Written atomically.
    """
    check_output_path(out, overwrite=overwrite, inputs=input_files(data))
    plt = _pyplot()
    stats = segment_stats(model, data, random_state=random_state)
    features = stats.features  # the profiled ones: one-hot columns show as category shares
    table = stats.table()
    selection = select_k(
        data,
        ks,
        columns=features,
        sample_size=sample_size,
        random_state=random_state,
        memory_budget=memory_budget,
        spill_dir=spill_dir,
        n_threads=model.n_threads,
        **PreprocessSettings.of(model).as_params(),
    )
    page = _page(plt, model, selection, stats, table)
    with atomic_output(out, overwrite=overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(page)
    return selection, table


def _page(plt, model, selection, stats, table):
    """The report's HTML: each section a title, a plot and a table."""
    features = stats.features
    sections = [
        ("Choosing k", _elbow(plt, selection, model.n_clusters), _selection_html(selection)),
        ("Segment sizes", _sizes(plt, table), ""),
    ]
    if features:  # (a model of categorical columns only has none to plot)
        sections += [
            ("What sets each segment apart (mean z-scores)", _heatmap(plt, table, features), ""),
            ("The segments in two dimensions (PCA of a sample)", _scatter(plt, model, stats), ""),
            ("Feature distributions by segment", _distributions(plt, stats), ""),
        ]
    sections.append(("Segment profiles", None, _markdown_table(format_profile(table, "markdown"))))
    labels = "".join(
        f"<li><b>segment {s}</b> ({share:.1%}): {html.escape(label)}</li>"
        for s, share, label in zip(table["segment"], table["share"], table["label"], strict=True)
    )
    body = [f"<h1>Customer segments: k = {model.n_clusters}</h1><ul>{labels}</ul>"]
    for title, image, extra in sections:
        body.append(f"<h2>{html.escape(title)}</h2>")
        if image is not None:
            body.append(f'<img alt="{html.escape(title)}" src="data:image/png;base64,{image}">')
        body.append(extra)
    return _PAGE.format(body="\n".join(body))


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise FastsegError(
            "the report draws its plots with matplotlib: pip install 'fastseg[report]'"
        ) from None
    return plt


def _png(plt, fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _elbow(plt, selection, k_now):
    ks = [s.k for s in selection.scores]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    panels = [
        ("inertia", "inertia (lower is tighter)"),
        ("silhouette", "silhouette (higher is better)"),
        ("davies_bouldin", "Davies-Bouldin (lower is better)"),
        ("calinski_harabasz", "Calinski-Harabasz (higher is better)"),
    ]
    for ax, (field, title) in zip(axes, panels, strict=True):
        ax.plot(ks, [getattr(s, field) for s in selection.scores], "o-", color="#3465a4")
        if selection.knee is not None:
            ax.axvline(selection.knee, color="#cc0000", ls="--", label=f"knee k={selection.knee}")
        ax.axvline(k_now, color="#4e9a06", ls=":", label=f"this model k={k_now}")
        ax.set_title(title)
        ax.set_xlabel("k")
        ax.set_xticks(ks)
    axes[0].legend(loc="upper right", fontsize=8)
    return _png(plt, fig)


def _selection_html(selection):
    if selection.knee is None:
        verdict = "The inertia curve has no clear knee: compare the other criteria."
    else:
        verdict = f"Recommended k = {selection.knee}: the knee of the inertia curve."
    picks = ", ".join(f"{html.escape(n)}: {k}" for n, k in selection.picks.items())
    return f"<p>{verdict} Best k by {picks}.</p><pre>{html.escape(selection.table())}</pre>"


def _sizes(plt, table):
    fig, ax = plt.subplots(figsize=(8, 3.2))
    names = [f"segment {s}" for s in table["segment"]]
    bars = ax.bar(names, table["size"], color="#3465a4")
    for bar, share in zip(bars, table["share"], strict=True):
        ax.annotate(
            f"{share:.1%}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    ax.set_ylabel("customers")
    return _png(plt, fig)


def _heatmap(plt, table, features):
    z = np.array([table[f"{f}_z"].to_numpy() for f in features]).T
    fig, ax = plt.subplots(figsize=(1.1 * len(features) + 2, 0.55 * z.shape[0] + 1.5))
    limit = max(1.0, float(np.abs(z).max()))
    image = ax.imshow(z, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(
        range(len(features)), [f.replace("_", " ") for f in features], rotation=30, ha="right"
    )
    ax.set_yticks(range(z.shape[0]), [f"segment {s}" for s in table["segment"]])
    for (i, j), value in np.ndenumerate(z):
        ax.text(
            j,
            i,
            f"{value:+.1f}",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if abs(value) > 0.6 * limit else "black",
        )
    fig.colorbar(image, ax=ax, label="z-score of the segment mean")
    return _png(plt, fig)


def _scatter(plt, model, stats):
    """The first two principal components of a sample (features standardised), each segment
    in its own colour."""
    rows, labels = _scatter_sample(stats)
    rows = rows.astype(np.float64)
    spread = rows.std(axis=0)
    centred = (rows - rows.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ components[:2].T
    if xy.shape[1] == 1:  # one feature: a strip along the first component
        xy = np.column_stack([xy, np.zeros(len(xy))])
        singular = np.r_[singular, 0.0]
    explained = singular[:2] ** 2 / max(float((singular**2).sum()), 1e-300)
    fig, ax = plt.subplots(figsize=(7, 6))
    colours = plt.get_cmap("tab10" if model.n_clusters <= 10 else "tab20")
    for c in np.unique(labels):
        mine = labels == c
        ax.scatter(
            xy[mine, 0], xy[mine, 1], s=6, alpha=0.6, color=colours(c % 20), label=f"segment {c}"
        )
    ax.set_xlabel(f"PC 1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({explained[1]:.0%} of variance)" if xy.shape[1] > 1 else "")
    ax.legend(markerscale=3, fontsize=8, loc="best")
    return _png(plt, fig)


def _scatter_sample(stats):
    """Up to ``config.report_scatter_points`` sampled rows, shared between segments by size."""
    share = stats.counts / max(stats.counts.sum(), 1)
    rows, labels = [], []
    for c, sample in enumerate(stats.sample):
        take = min(sample.shape[0], max(20, int(config.report_scatter_points * share[c])))
        first = np.argsort(stats.sample_keys[c], kind="stable")[:take]  # uniform, not file order
        rows.append(sample[first])
        labels.append(np.full(take, c))
    return np.concatenate(rows), np.concatenate(labels)


def _distributions(plt, stats):
    d = len(stats.features)
    cols = min(4, d)
    fig_rows = -(-d // cols)
    fig, axes = plt.subplots(fig_rows, cols, figsize=(4 * cols, 3 * fig_rows), squeeze=False)
    present = [c for c in range(stats.k) if stats.sample[c].shape[0]]
    for j, feature in enumerate(stats.features):
        ax = axes[j // cols][j % cols]
        ax.boxplot([stats.sample[c][:, j] for c in present], showfliers=False)
        ax.set_xticks(range(1, len(present) + 1), [str(c) for c in present])
        ax.set_title(feature.replace("_", " "))
        ax.set_xlabel("segment")
    for j in range(d, fig_rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.tight_layout()
    return _png(plt, fig)


def _markdown_table(text):
    """The profile's Markdown table as an HTML table."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    rows = [[html.escape(c.strip()) for c in line.strip("|").split("|")] for line in lines]
    head, body = rows[0], rows[2:]
    out = ["<table><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in body]
    return "".join(out) + "</table>"


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>fastseg report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }}
img {{ max-width: 100%; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
pre {{ background: #f6f6f6; padding: 0.8em; overflow-x: auto; }}
</style></head>
<body>
{body}
<p><small>Written by fastseg.</small></p>
</body></html>
"""
