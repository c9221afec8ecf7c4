"""A one-file HTML report of a segmentation, written for the people who will use the segments:
what data it describes and how that data was prepared, how k was chosen, the segments and
what sets them apart, with the plots embedded (matplotlib, the ``report`` extra).

It tells the story the fit told: a model fitted with ``k="auto"`` keeps the scores its k was
chosen from (``k_selection_``), and the report draws those rather than scoring k again. Every
plot names a segment by its profile label ("0: high income · low age") and draws it in the
same colour (``segment_colours``); axes read as plain numbers with thousands separators,
never an offset or an exponent (``_readable``). ``build_plots`` returns the figures before
they become PNG, so their colours and labels can be checked.

Given a later period (``new``), a drift section follows (``report_drift``): the report's data
is the earlier period, and its segments keep their colours and names there.
"""

import base64
import datetime
import functools
import html
import io
import os
from dataclasses import dataclass

import numpy as np

from .. import config
from .._version import __version__
from ..errors import DataError, FastsegError
from ..io.output import atomic_output, check_output_path, input_files
from ..preprocess.settings import PreprocessSettings
from .drift import drift
from .profile import fastseg_model, format_profile, segment_stats
from .report_drift import drift_plots, drift_section
from .select_k import Selection, select_k

DEFAULT_KS = range(2, 13)  # scored for a model whose k was given


def write_report(
    model,
    data,
    out,
    *,
    ks=None,
    sample_size=10_000,
    random_state=0,
    overwrite=False,
    memory_budget=None,
    spill_dir=None,
    new=None,
    id=None,
    compare=False,
):
    """Write ``out``: one self-contained HTML page on the segments ``model`` finds in ``data``.

    A header (the data, rows used and left out, features, preprocessing, k and how it was
    chosen, the date, the fastseg version); the choice of k (inertia, silhouette,
    Davies-Bouldin and Calinski-Harabasz by k); segment sizes; a centroid z-score heat map; a
    2-D PCA scatter of a sample; feature distributions by segment; the profile table.

    A model fitted with ``k="auto"`` keeps the scores its k was chosen from
    (``k_selection_``): those are drawn and ``ks`` is not used. For a model whose k was given,
    select-k scores ``ks`` (default 2..12) on ``data`` with the model's preprocessing
    (silhouettes on ``sample_size`` rows) to show what the curves suggest.

    ``new``: data of a later period (path(s) or a frame): a drift section follows, ``data``
    being the earlier period (``workflow.drift``: the verdict and its reasons, segment shares
    before and after, PSI by feature); ``id``, a customer id column of both periods, adds who
    moved from which segment to which. ``compare``: a section comparing k-means with the
    other algorithms on ``data`` (``workflow.compare``: each is fitted again). Written
    atomically. Returns (the ``Selection`` drawn, the profile table).
    """
    if id is not None and new is None:
        raise DataError(
            f"matching customers by id ('{id}') needs a later period to compare with: "
            "give it with --drift NEW (new=)"
        )
    check_output_path(out, overwrite=overwrite, inputs=input_files(data, new))
    model = fastseg_model(model)  # (or the fastseg model at the end of a Pipeline)
    plt = pyplot()
    later = None  # a later period's drift: measured first, so its errors come before the work
    if new is not None:
        later = drift(model, new, reference=data, id=id, seed=random_state, spill_dir=spill_dir)
    stats = segment_stats(model, data, random_state=random_state)
    table = stats.table()
    choice = choose_k_story(
        model,
        data,
        ks,
        columns=stats.features,  # the profiled ones: one-hot columns come from categorical
        sample_size=sample_size,
        random_state=random_state,
        memory_budget=memory_budget,
        spill_dir=spill_dir,
    )
    plots = build_plots(model, stats, table, choice)
    rendered = {key: (plot, png(plt, plot.figure)) for key, plot in plots.items()}
    sections = [rules_html(model, data, random_state, segment_colours(choice.k))]
    if compare:
        memory = dict(memory_budget=memory_budget, spill_dir=spill_dir)
        sections.append(compare_html(model, data, random_state, **memory))
    if later is not None:
        sections.append(drift_html(plt, later, table, data, new))
    page = _page(header_facts(model, data, stats, choice), choice, table, rendered, sections)
    with atomic_output(out, overwrite=overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(page)
    return choice.selection, table


# ----- the segments as rules ------------------------------------------------------------
def rules_html(model, data, random_state, colours):
    """ "The segments as rules": each segment as the rule a shallow tree gives it
    (``workflow.explain``), the share of customers it sends there, and how often the rules
    agree with the model."""
    from .explain import explain

    found = explain(model, data, seed=random_state)
    rows = "".join(
        f"<tr><td>{_swatch(colours[s])}segment {s}</td><td>{html.escape(text)}</td>"
        f"<td>{share:.0%}</td></tr>"
        for s, text, share in found.rules()
    )
    return (
        "<h2>The segments as rules</h2>"
        f'<table class="profile"><tr><th>segment</th><th>rule</th><th>customers</th></tr>{rows}'
        f'</table><p class="caption">A shallow decision tree, one leaf per segment, grown on '
        f"a sample of {found.sample.labels.size:,} customers (the IMM algorithm): the rules "
        f"agree with the model for {found.agreement:.0%} of them.</p>"
    )


def compare_html(model, data, random_state, **memory):
    """ "Other algorithms": ``workflow.compare``'s table on the model's features and
    preprocessing at its k, and the recommendation with its reason."""
    from .compare import compare as compare_algorithms

    pre = model.preprocessor_
    features = [*pre.plain_features(), *(pre.settings.categorical or [])]
    result = compare_algorithms(
        data,
        model.n_clusters,
        columns=features,
        settings=pre.settings,
        random_state=random_state,
        **memory,
    )
    head = [
        "algorithm",
        "k",
        "silhouette",
        "Davies–Bouldin",
        "Calinski–Harabasz",
        "agreement with k-means",
        "stability",
        "seconds",
    ]
    cells = "".join(f"<th>{h}</th>" for h in head)
    rows = "".join(
        f"<tr><td>{r.algorithm}</td><td>{r.k}</td>{_score_cells(r)}<td>{r.seconds:.1f}</td></tr>"
        for r in result.results
    )
    advice = result.recommendation
    return (
        "<h2>Other algorithms</h2>"
        f'<table class="profile"><tr>{cells}</tr>{rows}</table>'
        f'<p class="caption">Each algorithm fitted with the model\'s preprocessing on every '
        f"row, judged on a sample of {result.sample_rows:,} rows in k-means' space (stability: "
        "agreement of two fits on halves of the sample). Recommended: "
        f"<b>{html.escape(advice['algorithm'])}</b>: {html.escape(advice['reason'])}.</p>"
    )


def _score_cells(r):
    values = [r.silhouette, r.davies_bouldin, r.calinski_harabasz, r.ari_kmeans, r.stability]
    formats = ["{:.3f}", "{:.3f}", "{:,.0f}", "{:.3f}", "{:.3f}"]
    shown = [
        "–" if v is None or v != v else f.format(v) for v, f in zip(values, formats, strict=True)
    ]
    return "".join(f"<td>{v}</td>" for v in shown)


# ----- a later period -------------------------------------------------------------------
def drift_html(plt, result, table, data, new):
    """The drift section ("Drift: DATA → NEW"): ``report_drift``'s plots in the report's
    style, colours and segment names."""
    with plt.rc_context(STYLE):
        colours = segment_colours(len(result.segments))
        plots = drift_plots(plt, result, colours, segment_names(table, LABEL_WIDTH))
    rendered = {key: (plot, png(plt, plot.figure)) for key, plot in plots.items()}
    return drift_section(result, rendered, f"Drift: {source_text(data)} → {source_text(new)}")


# ----- the story of k ---------------------------------------------------------------------
@dataclass
class KChoice:
    """How the model's k came about, and the scores by k the report shows beside it."""

    k: int
    selection: Selection
    decided_by: str | None  # "knee" or "silhouette": the model's own selection; None: given

    @property
    def ks(self):
        return [s.k for s in self.selection.scores]

    def summary(self):
        """One line: 'k = 4, chosen by the knee of the inertia curve over k = 2..10'."""
        over = f"over k = {k_range_text(self.ks)}"
        if self.decided_by == "knee":
            return f"k = {self.k}, chosen by the knee of the inertia curve {over}"
        if self.decided_by == "silhouette":
            why = "no clear knee" if self.selection.knee is None else "the knee was unstable"
            return f"k = {self.k}, chosen by the best silhouette {over} ({why})"
        return f"k = {self.k}, given when the model was fitted"

    def verdict(self):
        """What the curves say about this k, in a few plain sentences."""
        selection, others = self.selection, self._picks()
        rows = f"{selection.n_rows:,} rows"
        if self.decided_by is not None:
            return (
                f"{self.summary()}, when the model was fitted: these are the scores it was "
                f"chosen from (on {rows}), not computed again. The other measures would pick "
                f"{others}."
            )
        text = (
            f"This model's k = {self.k} was given when it was fitted, not chosen from these "
            f"curves. Scored here over k = {k_range_text(self.ks)} on {rows} of this data, "
        )
        if selection.knee is None:
            text += "the inertia curve has no clear knee"
        elif selection.knee == self.k:
            text += f"the knee of the inertia curve is at k = {self.k} too"
        else:
            text += f"the knee of the inertia curve suggests k = {selection.knee}"
        outside = "" if self.k in self.ks else f" (k = {self.k} is outside the range scored)"
        return f"{text}; the other measures would pick {others}{outside}."

    def _picks(self):
        return ", ".join(f"{n.replace('-', '–')} {k}" for n, k in self.selection.picks.items())


def choose_k_story(
    model,
    data,
    ks=None,
    *,
    columns=None,
    sample_size=10_000,
    random_state=0,
    memory_budget=None,
    spill_dir=None,
):
    """The ``KChoice`` of a fitted model: its own selection of k when it keeps one (fitted
    with ``k="auto"``: nothing is scored), else select-k over ``ks`` (default 2..12) on
    ``data`` with the model's preprocessing."""
    kept = getattr(model, "k_selection_", None)
    if kept is not None:
        return KChoice(model.n_clusters, Selection.from_dict(kept), kept["decided_by"])
    selection = select_k(
        data,
        DEFAULT_KS if ks is None else ks,
        columns=columns,
        sample_size=sample_size,
        random_state=random_state,
        memory_budget=memory_budget,
        spill_dir=spill_dir,
        n_threads=model.n_threads,
        **PreprocessSettings.of(model).as_params(),
    )
    return KChoice(model.n_clusters, selection, None)


def k_range_text(ks):
    """'2..10' for a run of k, else '3, 5, 8'."""
    ks = sorted(ks)
    if len(ks) > 2 and ks == list(range(ks[0], ks[-1] + 1)):
        return f"{ks[0]}..{ks[-1]}"
    return ", ".join(map(str, ks))


# ----- the header -------------------------------------------------------------------------
def header_facts(model, data, stats, choice, now=None):
    """(name, text) pairs for the top of the report: data, rows, features, preprocessing, k,
    date and version."""
    settings = PreprocessSettings.of(model)
    features = ", ".join(stats.features) or "none (categorical columns only)"
    if settings.categorical:
        features += f"; categorical: {', '.join(settings.categorical)}"
    now = now or datetime.datetime.now().astimezone()
    return [
        ("Data", source_text(data)),
        ("Rows", _rows_text(stats, settings)),
        ("Features", features),
        ("Preprocessing", _preprocessing_text(model, settings)),
        ("Segments", choice.summary()),
        ("Date", now.strftime("%Y-%m-%d %H:%M")),
        ("fastseg version", __version__),
    ]


def source_text(data):
    """The data as the caller named it: its path(s), or what kind of table it is."""
    items = data if isinstance(data, list | tuple) else [data]
    if items and all(isinstance(item, str | os.PathLike) for item in items):
        return " ".join(os.fspath(item) for item in items)
    kind = type(data)
    return f"a {kind.__module__.partition('.')[0]} {kind.__name__} (in memory)"


def _rows_text(stats, settings):
    """Rows the report describes, and those it leaves out (a feature missing)."""
    used = int(stats.counts.sum())
    left_out = stats.n_left_out  # counted by the profile's pass: the input is not read again
    if left_out <= 0:
        return f"{used:,} (none has a missing feature)"
    text = f"{used:,} used; {left_out:,} with a missing feature left out"
    if settings.missing in ("mean", "median"):
        text += (
            f" of these plots and tables (the model gives them a segment, filling the gaps "
            f"with the feature's {settings.missing})"
        )
    return text


_SCALES = {
    "standard": "standardised (mean 0, standard deviation 1)",
    "minmax": "scaled to 0..1 (minimum, range)",
    "robust": "robust scaling (median, interquartile range)",
    "none": "not scaled",
}
_MISSING = {
    "drop": "rows with a missing feature dropped",
    "mean": "a missing value filled with the feature's mean",
    "median": "a missing value filled with the feature's median",
    "error": "no missing values allowed",
}


def _preprocessing_text(model, settings):
    """The model's preprocessing in its steps' order: derive, log1p, fill, scale, one-hot, PCA."""
    steps = [f"derived: {d}" for d in settings.derive or ()]
    if settings.log1p:
        steps.append(f"log(1 + x) of {', '.join(map(str, settings.log1p))}")
    steps += [_MISSING[settings.missing], _SCALES[settings.scale]]
    fitted = model._preprocessing()
    if settings.categorical:
        steps.append(
            f"{', '.join(settings.categorical)} one-hot encoded "
            f"(weight {fitted.category_weight:.3g})"
        )
    if fitted.pca is not None:
        kept = float(np.sum(fitted.pca.explained_variance_ratio))
        steps.append(f"PCA: {fitted.n_components} components ({kept:.0%} of the variance)")
    elif settings.pca is not None:
        steps.append(f"PCA: {settings.pca}")
    else:
        steps.append("no PCA")
    return "; ".join(steps)


# ----- the plots --------------------------------------------------------------------------
@dataclass
class Plot:
    """A figure of the report (matplotlib, not yet saved), its title and caption (HTML)."""

    title: str
    figure: object
    caption: str = ""


def segment_colours(k):
    """One colour per segment, the same in every plot and in the page: matplotlib's tab10 up
    to 10 segments, tab20's dark then light shades up to 20, evenly spaced hues beyond."""
    from matplotlib import colormaps, colors

    if k <= 10:
        chosen = colormaps["tab10"].colors[:k]
    elif k <= 20:
        shades = colormaps["tab20"].colors
        chosen = (shades[0::2] + shades[1::2])[:k]
    else:
        chosen = colormaps["hsv"](np.linspace(0, 1, k, endpoint=False))
    return [colors.to_hex(c) for c in chosen]


def segment_names(table, width=None):
    """{segment: '0: high income · low age'} from the profile; for plots, lines of at most
    ``width`` characters broken between the label's parts (one longer stays whole)."""
    names = {}
    for s, label in zip(table["segment"], table["label"], strict=True):
        parts = f"{s}: {label}".split(" · ")
        if width is None:
            names[int(s)] = " · ".join(parts)
            continue
        lines = [parts[0]]
        for part in parts[1:]:
            if len(lines[-1]) + len(part) + 3 <= width:
                lines[-1] += f" · {part}"
            else:
                lines[-1] += " ·"
                lines.append(part)
        names[int(s)] = "\n".join(lines)
    return names


LABEL_WIDTH = 32  # characters per line of a segment's name in a plot


def build_plots(model, stats, table, choice):
    """The report's figures, keyed: "k" (the choice of k), "sizes", and with plain features
    "heatmap", "scatter", "distributions". The caller saves and closes them."""
    plt = pyplot()
    segments = [int(s) for s in table["segment"]]
    colours = segment_colours(model.n_clusters)
    names = segment_names(table, LABEL_WIDTH)
    lines = max(name.count("\n") + 1 for name in names.values())
    row = max(0.42, 0.16 * lines + 0.16)  # inches per segment where names label rows
    with plt.rc_context(STYLE):
        plots = {
            "k": _choosing_k(plt, choice),
            "sizes": _sizes(plt, table, segments, names, colours, row),
        }
        if stats.features:  # (a model of categorical columns only has none to plot)
            plots["heatmap"] = heatmap(plt, table, stats.features, segments, names, colours, row)
            plots["scatter"] = _scatter(plt, stats, segments, names, colours)
            plots["distributions"] = _distributions(plt, stats, segments, names, colours, row)
    return plots


STYLE = {
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.titlelocation": "left",
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
}

_INK, _MODEL_K, _KNEE, _BEST = "#333333", "#2a7ab0", "#c0392b", "#f0a30a"

_K_PANELS = [  # (score, title, the criterion whose best k is starred)
    ("inertia", "Inertia: spread within segments (lower is tighter)", None),
    ("silhouette", "Silhouette: how clearly customers belong (higher is better)", "silhouette"),
    ("davies_bouldin", "Davies–Bouldin: overlap of segments (lower is better)", "Davies-Bouldin"),
    ("calinski_harabasz", "Calinski–Harabasz: separation (higher is better)", "Calinski-Harabasz"),
]


def _choosing_k(plt, choice):
    """The four scores by k, with this model's k (a band and a ring on each curve), the knee
    (a dashed line: both show where they coincide) and each measure's best k (a star)."""
    selection, ks, k = choice.selection, choice.ks, choice.k
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), layout="constrained", sharex=True)
    for ax, (field, title, criterion) in zip(axes.flat, _K_PANELS, strict=True):
        values = [getattr(s, field) for s in selection.scores]
        ax.plot(ks, values, "o-", color=_INK, lw=1.5, ms=4, zorder=3)
        if k in ks:
            ax.axvspan(k - 0.35, k + 0.35, color=_MODEL_K, alpha=0.15, lw=0, zorder=1)
            ax.plot(k, values[ks.index(k)], "o", ms=13, mfc="none", mec=_MODEL_K, mew=2, zorder=4)
        if selection.knee is not None:
            ax.axvline(selection.knee, color=_KNEE, ls="--", lw=1.4, zorder=2)
        if criterion in selection.picks:
            best = selection.picks[criterion]
            ax.plot(best, values[ks.index(best)], "*", ms=14, color=_BEST, mec=_INK, zorder=5)
        ax.set_title(title)
        ax.margins(x=0.06, y=0.12)
        ax.grid(axis="y", color="#dddddd", lw=0.8)
        _readable(ax.yaxis)
    for ax in axes[1]:
        ax.set_xlabel("k (number of segments)")
        if len(ks) <= 25:
            ax.set_xticks(ks)
    _k_legend(fig, choice)
    return Plot("Choosing k", fig, _K_CAPTION)


def _k_legend(fig, choice):
    """One legend under the four panels: the model's k (band and ring), knee, best k."""
    from matplotlib.legend_handler import HandlerTuple
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    how = {"knee": "chosen by the knee", "silhouette": "chosen by the best silhouette"}.get(
        choice.decided_by, "given"
    )
    if choice.k not in choice.ks:
        how += f"; outside k = {k_range_text(choice.ks)}"
    ring = Line2D([], [], ls="", marker="o", ms=10, mfc="none", mec=_MODEL_K, mew=2)
    handles = [
        ((Patch(color=_MODEL_K, alpha=0.15, lw=0), ring), f"this model: k = {choice.k} ({how})"),
        (Line2D([], [], color=_KNEE, ls="--", lw=1.4), _knee_label(choice.selection)),
        (Line2D([], [], ls="", marker="*", ms=13, color=_BEST, mec=_INK), "best k by that measure"),
    ]
    fig.legend(
        *zip(*handles, strict=True),
        loc="outside lower center",
        ncols=3,
        handler_map={tuple: HandlerTuple(ndivide=1)},
    )


_K_CAPTION = (
    "<b>Inertia</b> is the total squared distance of customers from the centre of their "
    "segment (in the scaled units the model clusters in): it always falls as segments are "
    "added, and the knee is where adding one stops paying off. <b>Silhouette</b>: how much "
    "closer a customer is to its own segment than to the next one (−1 to 1, on a sample). "
    "<b>Davies–Bouldin</b>: how much each segment overlaps its most similar one, its spread "
    "against the distance between them (0 would be fully apart). <b>Calinski–Harabasz</b>: "
    "the spread between segments against the spread within them."
)


def _knee_label(selection):
    if selection.knee is None:
        return "knee of the inertia curve: none clear"
    return f"knee of the inertia curve: k = {selection.knee}"


def _sizes(plt, table, segments, names, colours, row):
    """Customers per segment: a bar each, in its colour, named, with count and share."""
    n = len(segments)
    fig, ax = plt.subplots(figsize=(9, row * n + 0.9), layout="constrained")
    y = np.arange(n)
    sizes = table["size"].to_numpy()
    ax.barh(y, sizes, height=0.7, color=[colours[s] for s in segments])
    for i, (size, share) in enumerate(zip(sizes, table["share"], strict=True)):
        ax.annotate(
            f"{size:,} · {share:.1%}",
            (size, i),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
        )
    ax.set_yticks(y, [names[s] for s in segments])
    ax.set_ylim(n - 0.5, -0.5)  # segment 0 on top
    ax.set_xlim(0, sizes.max() * 1.25)  # room for the counts right of the longest bar
    ax.set_xlabel("customers")
    _readable(ax.xaxis)
    return Plot("Segment sizes", fig)


def heatmap(plt, table, features, segments, names, colours, row):
    """Each segment's mean per feature in standard deviations from the average customer."""
    from matplotlib.colors import to_rgb

    z = np.array([table[f"{f}_z"].to_numpy() for f in features]).T
    n, d = z.shape
    fig, (strip, ax) = plt.subplots(
        1,
        2,
        figsize=(4.5 + 1.1 * d, row * n + 1.6),
        layout="constrained",
        sharey=True,
        gridspec_kw={"width_ratios": [0.25, d]},
    )
    strip.imshow([[to_rgb(colours[s])] for s in segments], aspect="auto")
    strip.set_xticks([])
    strip.set_yticks(range(n), [names[s] for s in segments])
    strip.spines[:].set_visible(False)
    limit = max(1.0, float(np.abs(z).max()))
    image = ax.imshow(z, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(d), [_feature_text(f) for f in features], rotation=30, ha="right")
    ax.tick_params(left=False, labelleft=False)
    for (i, j), value in np.ndenumerate(z):
        ax.text(
            j,
            i,
            f"{value:+.1f}" if round(value, 1) != 0 else "0.0",  # not "-0.0"
            ha="center",
            va="center",
            fontsize=9,
            color="white" if abs(value) > 0.6 * limit else "black",
        )
    fig.colorbar(image, ax=ax, label="standard deviations from\nthe average customer")
    return Plot(
        "What sets each segment apart (mean z-scores)",
        fig,
        "Each cell: how far the segment's average is from the average customer, in standard "
        "deviations (+1.0: one standard deviation above). Red is above average, blue below; "
        "the label of a segment names its strongest differences.",
    )


def _scatter(plt, stats, segments, names, colours):
    """The first two principal components of a sample (features standardised), each segment
    in its own colour."""
    rows, labels = _scatter_sample(stats)
    xy, explained = pca_2d(rows.astype(np.float64))
    fig, ax = plt.subplots(figsize=(9, 7), layout="constrained")
    for s in segments:  # largest first: the small segments are drawn over it
        mine = labels == s
        ax.scatter(xy[mine, 0], xy[mine, 1], s=7, alpha=0.6, color=colours[s], label=names[s])
    ax.set_xlabel(f"direction 1 ({explained[0]:.0%} of the differences between customers)")
    ax.set_ylabel(f"direction 2 ({explained[1]:.0%})" if explained[1] > 0 else "")
    ax.set_xticks([])  # standard deviations along a mix of features: no unit worth reading
    ax.set_yticks([])
    legend = fig.legend(loc="outside lower center", ncols=min(2, len(segments)), markerscale=2.5)
    for handle in legend.legend_handles:
        handle.set_alpha(1)
    return Plot(
        "The segments in two dimensions (PCA of a sample)",
        fig,
        f"Each dot is a customer ({len(labels):,} sampled, shared between segments by size). "
        "The axes are the two directions along which customers differ most (the first two "
        "principal components of the standardised features); together they show "
        f"{explained.sum():.0%} of the differences, so segments that overlap here may still "
        "be apart in the others.",
    )


def pca_2d(rows):
    """The rows on the first two principal components of the standardised features, and the
    share of the differences each shows (the report's scatter, the dashboard's)."""
    n, d = rows.shape
    if n == 0 or d == 0:
        return np.zeros((n, 2)), np.zeros(2)
    spread = rows.std(axis=0)
    centred = (rows - rows.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ components[:2].T
    explained = singular[:2] ** 2 / max(float((singular**2).sum()), 1e-300)
    if xy.shape[1] == 1:  # one feature (or one row): a strip along the first component
        xy = np.column_stack([xy, np.zeros(n)])
        explained = np.r_[explained, 0.0]
    return xy, explained


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


def _distributions(plt, stats, segments, names, colours, row):
    """A box plot per feature, a box per segment in its colour; outliers left out and counted
    in the caption."""
    from matplotlib.ticker import MaxNLocator

    d = len(stats.features)
    fig_rows = -(-d // 3)
    cols = -(-d // fig_rows)  # at most 3 a row, the rows as full as can be: 4 is 2 + 2
    fig, axes = plt.subplots(
        fig_rows,
        cols,
        figsize=(2.6 + 3.2 * cols, (row * len(segments) + 0.9) * fig_rows),
        layout="constrained",
        sharey=True,
        squeeze=False,
    )
    left_out = []
    for j, feature in enumerate(stats.features):
        ax = axes.flat[j]
        values = [stats.sample[s][:, j] for s in segments]
        parts = ax.boxplot(
            values,
            positions=range(len(segments)),
            widths=0.65,
            patch_artist=True,
            showfliers=False,
            medianprops={"color": "black", "lw": 1.8},
            **_horizontal(),
        )
        for box, s in zip(parts["boxes"], segments, strict=True):
            box.set_facecolor(colours[s])
            box.set_edgecolor("#222222")
        ax.set_title(_feature_text(feature))
        ax.grid(axis="x", color="#dddddd", lw=0.8)
        ax.xaxis.set_major_locator(
            MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10])
        )  # room for 300,000
        _readable(ax.xaxis)
        beyond = sum(_beyond_whiskers(v) for v in values)
        left_out.append((beyond / max(sum(v.size for v in values), 1), feature))
    axes.flat[0].set_yticks(range(len(segments)), [names[s] for s in segments])
    axes.flat[0].set_ylim(len(segments) - 0.5, -0.5)  # segment 0 on top (axes share y)
    for ax in axes.flat[d:]:
        ax.axis("off")
    return Plot("Feature distributions by segment", fig, _outliers_note(left_out))


def _horizontal():
    """boxplot's argument for horizontal boxes: ``orientation`` from matplotlib 3.10, which
    deprecates ``vert``."""
    from matplotlib import __version__ as version

    major, minor = (int(p) for p in version.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


def _beyond_whiskers(values):
    """Values a box plot leaves out: beyond 1.5 box lengths from the box (as matplotlib)."""
    if values.size == 0:
        return 0
    low, high = np.percentile(values, [25, 75])
    reach = 1.5 * (high - low)
    return int(np.count_nonzero((values < low - reach) | (values > high + reach)))


def _outliers_note(left_out):
    """The caption of the box plots, saying how many customers each leaves out."""
    text = (
        "Each box holds the middle half of a segment's customers (25th to 75th percentile); "
        "the black line is the median; the whiskers reach the furthest customer within 1.5 "
        "box lengths. Customers beyond the whiskers (outliers) are <b>not drawn</b>, so that "
        "the boxes stay readable"
    )
    some = sorted((share, f) for share, f in left_out if share > 0)[::-1]
    if not some:
        return text + " (here there are none)."
    listed = ", ".join(f"{_share_text(share)} for {_feature_text(f)}" for share, f in some)
    return text + f". Left out of the sampled customers: {listed}."


def _share_text(share):
    return "under 0.1%" if share < 0.001 else f"{share:.1%}"


def _feature_text(name):
    return str(name).replace("_", " ")


def _readable(axis):
    """Tick labels read at a glance: 300,000 (not 300000, nor 3 with '1e5' at the axis end);
    1.5M from a million up; as many decimals as the ticks need."""
    axis.set_major_formatter(_readable_formatter()())


@functools.cache
def _readable_formatter():
    """The formatter class of ``_readable`` (made on first use: matplotlib is imported only
    when a report is drawn)."""
    from matplotlib.ticker import Formatter

    class Readable(Formatter):
        decimals, scale, suffix = 0, 1.0, ""

        def set_locs(self, locs):
            super().set_locs(locs)
            values = np.asarray(locs, dtype=float)
            values = values[np.isfinite(values)]
            top = float(np.abs(values).max()) if values.size else 0.0
            self.scale, self.suffix = next(((s, x) for s, x in _LARGE if top >= s), (1.0, ""))
            scaled = values / self.scale
            self.decimals = next(
                (d for d in range(7) if np.allclose(np.round(scaled, d), scaled, atol=1e-9)), 6
            )

        def __call__(self, x, pos=None):
            text = f"{x / self.scale:,.{self.decimals}f}"
            if text.strip("-0.,") == "":
                return text.lstrip("-")  # zero: no "-0", no suffix
            return text + self.suffix

    return Readable


_LARGE = ((1e12, "T"), (1e9, "B"), (1e6, "M"))  # 1.5M: fewer digits than 1,500,000


def png(plt, fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", pad_inches=0.15)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise FastsegError(
            "the report draws its plots with matplotlib: pip install 'fastseg[report]'"
        ) from None
    return plt


# ----- the page ---------------------------------------------------------------------------
def _page(facts, choice, table, rendered, sections=()):
    """The report's HTML: the header, the segments, each plot with its caption, the profile
    table, then ``sections`` (HTML: the rules, the drift to a later period)."""
    colours = segment_colours(choice.k)
    names = segment_names(table)
    rows = "".join(f"<tr><th>{html.escape(n)}</th><td>{html.escape(v)}</td></tr>" for n, v in facts)
    segments = "".join(
        f"<li>{_swatch(colours[s])}<b>{html.escape(names[s])}</b> ({share:.1%}, {size:,})</li>"
        for s, share, size in zip(table["segment"], table["share"], table["size"], strict=True)
    )
    body = [
        f"<h1>Customer segments: k = {choice.k}</h1>",
        f'<table class="facts">{rows}</table>',
        f'<ul class="segments">{segments}</ul>',
    ]
    extras = {"k": f"<p>{html.escape(choice.verdict())}</p>{_scores_table(choice)}"}
    for key, (plot, image) in rendered.items():
        body.append(f"<h2>{html.escape(plot.title)}</h2>")
        body.append(f'<img alt="{html.escape(plot.title)}" src="data:image/png;base64,{image}">')
        if plot.caption:
            body.append(f'<p class="caption">{plot.caption}</p>')
        body.append(extras.get(key, ""))
    body.append("<h2>Segment profiles</h2>")
    body.append(_profile_html(table, colours))
    body.extend(sections)
    return _PAGE.format(body="\n".join(body), version=html.escape(__version__))


def _swatch(colour):
    return f'<span class="swatch" style="background:{colour}"></span>'


def _scores_table(choice):
    """The scores by k as a table, this model's k in bold, with what picks each k."""
    selection = choice.selection
    head = ["k", "inertia", "silhouette", "Davies–Bouldin", "Calinski–Harabasz", "iterations"]
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "<th>best by</th></tr>"]
    for s in selection.scores:
        picked = (["knee"] if s.k == selection.knee else []) + [
            name.replace("-", "–") for name, k in selection.picks.items() if k == s.k
        ]
        cells = [
            str(s.k),
            f"{s.inertia:,.0f}",
            f"{s.silhouette:.3f}",
            f"{s.davies_bouldin:.3f}",
            f"{s.calinski_harabasz:,.0f}",
            f"{s.n_iter:,}",
        ]
        mark = ' class="this"' if s.k == choice.k else ""
        out.append(
            f"<tr{mark}>"
            + "".join(f"<td>{c}</td>" for c in cells)
            + f'<td class="text">{html.escape(", ".join(picked))}</td></tr>'
        )
    return "".join(out) + "</table>"


def _profile_html(table, colours):
    """The profile's Markdown table as an HTML table, each segment's column under its colour."""
    lines = format_profile(table, "markdown").splitlines()
    rows = [[html.escape(c.strip()) for c in line.strip("|").split("|")] for line in lines]
    head, body = rows[0], rows[2:]
    swatches = ["", *[_swatch(colours[s]) for s in table["segment"]]]
    out = [
        "<table><tr>"
        + "".join(f"<th>{sw}{c}</th>" for sw, c in zip(swatches, head, strict=True))
        + "</tr>"
    ]
    out += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in body]
    return "".join(out) + "</table>"


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>fastseg report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }}
img {{ max-width: 100%; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }}
td:first-child, th:first-child, td.text {{ text-align: left; }}
table.facts th, table.facts td {{ text-align: left; border: none; padding: 0.15em 1em 0.15em 0; }}
tr.this {{ font-weight: bold; background: #eef5fb; }}
p.caption {{ color: #555; font-size: 0.9em; max-width: 60em; }}
ul.segments {{ list-style: none; padding-left: 0; }}
.swatch {{ display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.4em;
  border-radius: 2px; vertical-align: baseline; }}
</style></head>
<body>
{body}
<p><small>Written by fastseg {version}.</small></p>
</body></html>
"""
