"""The drift section of the report (``fastseg report --drift NEW``): has the report's data
changed in a later period, do the segments still hold, who moved where?

It draws a ``DriftResult`` (``workflow.drift``) for the same readers as the rest of the page:
the verdict and its reasons in words, the segment shares before and after in each segment's
colour and name (as every other plot), PSI by feature against the watch and retrain levels,
the migration between segments when customers were matched by id, and a table by feature.
"""

import html
from dataclasses import dataclass

import numpy as np

VERDICT_COLOURS = {"stable": "#2e8b57", "watch": "#f0a30a", "retrain": "#c0392b"}
_BEFORE_ALPHA = 0.4  # the earlier period: the segment's colour, lighter and hatched


@dataclass
class Plot:
    """A figure of the section (matplotlib, not yet saved), its title and caption (HTML): the
    shape of the report's own plots, which the report renders the same way."""

    title: str
    figure: object
    caption: str = ""


def drift_plots(plt, result, colours, names):
    """The section's figures, keyed: "shares", "psi" (with features) and "migration" (with
    ids). ``colours``: a colour per segment (the report's ``segment_colours``); ``names``:
    {segment: name} (its ``segment_names``). The caller styles, saves and closes them."""
    plots = {"shares": _shares(plt, result, colours, names)}
    if result.features:
        plots["psi"] = _psi(plt, result)
    if result.migration is not None:
        plots["migration"] = _migration(plt, result.migration, names)
    return plots


def drift_section(result, rendered, title="Drift"):
    """The section's HTML: a heading, the verdict and its reasons, each plot of ``rendered``
    ({key: (plot, base64 PNG)} of ``drift_plots``) with its caption, the table by feature
    under the PSI plot."""
    parts = [f"<h2>{html.escape(title)}</h2>", verdict_html(result)]
    for key, (plot, image) in rendered.items():
        parts.append(f"<h3>{html.escape(plot.title)}</h3>")
        parts.append(f'<img alt="{html.escape(plot.title)}" src="data:image/png;base64,{image}">')
        if plot.caption:
            parts.append(f'<p class="caption">{plot.caption}</p>')
        if key == "psi":
            parts.append(features_table(result))
    return "\n".join(parts)


# ----- in words ---------------------------------------------------------------------------
def verdict_html(result):
    """The verdict (in its colour), the rows compared, and every reason (escaped)."""
    rows = result.rows
    colour = VERDICT_COLOURS.get(result.verdict, "#333333")
    badge = (
        f'<span style="background:{colour};color:white;padding:0.1em 0.5em;'
        f'border-radius:3px">{html.escape(result.verdict)}</span>'
    )
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in result.reasons)
    return (
        f"<p><b>Verdict: {badge}</b> ({rows['new']:,} rows of the later period against "
        f"{rows['reference']:,} of the earlier one). Stable: nothing to do; watch: look again "
        "at the next period; retrain: the segments no longer describe the customers well, "
        f"fit the model again.</p><ul>{reasons}</ul>"
    )


def features_table(result):
    """A row per feature: PSI, the effect size (Wasserstein / std, or Jensen–Shannon for a
    categorical column), the verdict and its reason."""
    head = ["feature", "PSI", "W/std or JS", "verdict", "reason"]
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for f in result.features:
        numeric = f["kind"] == "numeric"
        effect = f["wasserstein_std"] if numeric else f.get("js")
        name = f["feature"] if numeric else f"{f['feature']} (categorical)"
        cells = [
            f'<td class="text">{html.escape(str(name))}</td>',
            f"<td>{f['psi']:.3f}</td>",
            f"<td>{'-' if effect is None else f'{effect:.3f}'}"
            f"{' (W/std)' if numeric else ' (JS)'}</td>",
            f'<td class="text" style="color:{VERDICT_COLOURS.get(f["verdict"], "#333")}">'
            f"<b>{html.escape(f['verdict'])}</b></td>",
            f'<td class="text">{html.escape(f["reason"])}</td>',
        ]
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "".join(out) + "</table>"


# ----- the plots --------------------------------------------------------------------------
def _shares(plt, result, colours, names):
    """Each segment's share before and after: two bars a segment, in its colour, the earlier
    one lighter and hatched, each with its share."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import PercentFormatter

    segments = result.segments
    n = len(segments)
    lines = max(names.get(s["segment"], "").count("\n") + 1 for s in segments)
    row = max(0.6, 0.16 * lines + 0.35)  # inches per segment: two bars and its name
    fig, ax = plt.subplots(figsize=(9, row * n + 1.2), layout="constrained")
    y = np.arange(n)
    periods = ((-0.2, "reference_share", _BEFORE_ALPHA, "//"), (0.2, "new_share", 1.0, None))
    for shift, key, alpha, hatch in periods:
        shares = [s[key] for s in segments]
        bars = ax.barh(
            y + shift,
            shares,
            height=0.38,
            color=[colours[s["segment"]] for s in segments],
            alpha=alpha,
            hatch=hatch,
            edgecolor="#555555",
            lw=0.5,
        )
        ax.bar_label(bars, [f"{v:.1%}" for v in shares], padding=3, fontsize=8)
    ax.set_yticks(y, [names.get(s["segment"], str(s["segment"])) for s in segments])
    ax.set_ylim(n - 0.5, -0.5)  # segment 0 on top
    top = max(max(s["reference_share"], s["new_share"]) for s in segments)
    ax.set_xlim(0, top * 1.2 or 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("share of the customers with a segment")
    grey = "#999999"
    handles = [
        Patch(facecolor=grey, alpha=_BEFORE_ALPHA, hatch="//", edgecolor="#555555"),
        Patch(facecolor=grey, edgecolor="#555555"),
    ]
    texts = ["before (earlier period)", "after (later period)"]
    fig.legend(handles, texts, loc="outside lower center", ncols=2)
    return Plot("Segment shares before and after", fig, _shares_caption(result))


def _shares_caption(result):
    summary = result.summary["segment_shares"]
    return (
        "Each segment's share of the customers in the earlier period (light, hatched) and in "
        "the later one (solid), each customer given the segment whose centre is nearest. "
        f"PSI of the shares: {summary['psi']:.3f} ({html.escape(summary['verdict'])})."
    )


def _psi(plt, result):
    """PSI by feature: a bar each, coloured by its verdict, with dashed lines at the watch and
    retrain levels."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    features = result.features
    n = len(features)
    watch, retrain = result.rules.psi
    fig, ax = plt.subplots(figsize=(9, 0.42 * n + 1.4), layout="constrained")
    psi = np.array([f["psi"] for f in features])
    y = np.arange(n)
    bars = ax.barh(y, psi, height=0.6, color=[VERDICT_COLOURS[f["verdict"]] for f in features])
    ax.bar_label(bars, [f"{v:.3f}" for v in psi], padding=3, fontsize=8)
    levels = [(watch, "watch", VERDICT_COLOURS["watch"])]
    if retrain is not None:
        levels.append((retrain, "retrain", VERDICT_COLOURS["retrain"]))
    for level, _, colour in levels:
        ax.axvline(level, color=colour, ls="--", lw=1.2)
    ax.set_yticks(y, [_feature_label(f) for f in features])
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(0, max(float(psi.max()), *(lv for lv, _, _ in levels)) * 1.2)
    ax.set_xlabel("PSI (population stability index)")
    handles = [Line2D([], [], color=c, ls="--", lw=1.2) for _, _, c in levels]
    handles += [Patch(color=c) for c in VERDICT_COLOURS.values()]
    texts = [f"{name} at {level:g}" for level, name, _ in levels] + list(VERDICT_COLOURS)
    fig.legend(handles, texts, loc="outside lower center", ncols=len(texts))
    return Plot("How much each feature moved (PSI)", fig, _PSI_CAPTION)


def _feature_label(f):
    name = str(f["feature"]).replace("_", " ")
    return name if f["kind"] == "numeric" else f"{name} (categorical)"


_PSI_CAPTION = (
    "The population stability index compares how the customers fall into the earlier "
    "period's ten decile bins of a feature (or its levels, for a categorical column) then and "
    "now: 0 is no change; under 0.1 is usually read as stable, above 0.25 as a real shift. The "
    "dashed lines are the levels at which the verdict becomes watch and retrain; the bar's "
    "colour is the feature's verdict, which also weighs the Wasserstein distance (in standard "
    "deviations) or the Jensen–Shannon distance in the table below."
)


def _migration(plt, migration, names):
    """The customers of both periods by segment before (rows) and after (columns): each cell
    coloured by its share of the row, with its count."""
    matrix = np.asarray(migration["matrix"], dtype=np.int64)
    k = matrix.shape[0]
    totals = matrix.sum(axis=1, keepdims=True)
    share = matrix / np.where(totals > 0, totals, 1)
    lines = max(names.get(s, "").count("\n") + 1 for s in range(k))
    row = max(0.5, 0.16 * lines + 0.2)
    fig, ax = plt.subplots(figsize=(4.5 + 0.8 * k, row * k + 1.6), layout="constrained")
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            f"{count:,}",
            ha="center",
            va="center",
            fontsize=9,
            color="white" if share[i, j] > 0.55 else "black",
        )
    ax.set_yticks(range(k), [names.get(s, str(s)) for s in range(k)])
    ax.set_xticks(range(k), [str(s) for s in range(k)])
    ax.set_ylabel("segment before (earlier period)")
    ax.set_xlabel("segment after (later period)")
    fig.colorbar(image, ax=ax, label="share of the segment before", format="{x:.0%}")
    return Plot("Who moved where (customers matched by id)", fig, _migration_caption(migration))


def _migration_caption(m):
    matrix = np.asarray(m["matrix"])
    stayed = int(np.trace(matrix)) / max(int(matrix.sum()), 1)
    return (
        f"The {m['matched']:,} customers found in both periods by their id: each row is a "
        "segment in the earlier period, each column the segment the same customers are in "
        "now; a cell gives the number of customers, its colour their share of the row. "
        f"{stayed:.1%} stayed in their segment (the diagonal). New customers (only in the "
        f"later period): {m['new']:,}; lost (only in the earlier one): {m['lost']:,}; in "
        f"both but without a segment (a missing feature): {m['unassigned']:,}."
    )
