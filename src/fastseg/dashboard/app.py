"""The dashboard's page: a Streamlit script over a folder of aggregates (``aggregates.py``).

``fastseg dashboard`` runs it as ``streamlit run app.py -- FOLDER``; the environment variable
``FASTSEG_DASHBOARD_DATA`` names the folder too (``streamlit.testing``'s ``AppTest`` passes no
arguments). Streamlit runs the whole script again on every change of a widget, so the load
and the matplotlib figures are cached. The segment and feature filters work on the sample of
rows (the scatter, the filtered metrics); the whole data's numbers (sizes, profile, metrics)
come from the aggregates and stay exact. Figures reuse the HTML report's, for the same look:
one colour and one name per segment everywhere.
"""

import base64
import html
import math
import os
import re
import sys

import altair as alt
import polars as pl
import streamlit as st

from fastseg.dashboard.aggregates import META, drift_result, load_aggregates
from fastseg.workflow.profile import format_profile
from fastseg.workflow.report import LABEL_WIDTH, STYLE, heatmap, png, pyplot, segment_names
from fastseg.workflow.report_drift import drift_plots

ENV = "FASTSEG_DASHBOARD_DATA"
VERDICT_COLOURS = {"stable": "green", "watch": "orange", "retrain": "red"}  # Streamlit's names


def data_folder():
    """The aggregates' folder: the environment's, else the first argument that holds them."""
    for candidate in [os.environ.get(ENV), *sys.argv[1:]]:
        if candidate and os.path.isfile(os.path.join(candidate, META)):
            return candidate
    return None


@st.cache_data(show_spinner=False)
def load(folder, stamp):
    """The aggregates, read once per folder and version (``stamp``: their file's mtime)."""
    return load_aggregates(folder)


def main():
    st.set_page_config(page_title="fastseg dashboard", layout="wide")
    folder = data_folder()
    if folder is None:
        st.error(
            "No dashboard data found: start the dashboard with `fastseg dashboard MODEL DATA`, "
            f"or name a folder of saved aggregates after `--` or in {ENV}."
        )
        return
    key = (folder, os.path.getmtime(os.path.join(folder, META)))
    agg = load(*key)
    chosen, ranges = sidebar(agg)
    header(agg["meta"])
    sizes_section(agg["segments"], chosen)
    if chosen:
        sample = filtered(agg["sample"], chosen, ranges)
        profile_section(agg["profile"], chosen)
        if agg["meta"]["features"]:  # (a model of categorical columns only has none)
            heatmap_section(key, tuple(chosen))
            scatter_section(agg, sample, ranges)
        metrics_section(agg, chosen, sample, ranges)
    else:
        st.info("No segment selected: choose one or more in the sidebar.")
    if agg["drift"] is not None:
        drift_section(key, agg)


# ----- filters ----------------------------------------------------------------------------
def sidebar(agg):
    """The segments chosen (all by default) and the feature ranges narrowed: {feature:
    (low, high)}, only those a user moved."""
    names = segment_names_of(agg["segments"])
    st.sidebar.header("Filters")
    chosen = st.sidebar.multiselect(
        "Segments", list(names), default=list(names), format_func=names.get, key="segments"
    )
    chosen = sorted(chosen)  # (in the order clicked): tables and figures keep segment order
    st.sidebar.caption(
        "Feature ranges select sampled customers: they change the scatter and the metrics "
        "of the customers matching them."
    )
    ranges = {}
    for feature in agg["meta"]["features"]:
        bounds = slider_bounds(agg["profile"], agg["sample"], feature)
        if bounds is None:  # one value only: nothing to filter
            continue
        low, high, step, shown = bounds
        picked = st.sidebar.slider(
            feature_text(feature),
            low,
            high,
            (low, high),
            step=step,
            format=shown,
            key=f"range:{feature}",
        )
        if tuple(picked) != (low, high):
            ranges[feature] = tuple(picked)
    return chosen, ranges


def slider_bounds(profile, sample, feature):
    """(low, high, step, format) of a feature's slider: the whole data's range, rounded out
    to a step of about a 200th of it (whole numbers for a feature of whole numbers)."""
    low = profile[f"{feature}_min"].min()
    high = profile[f"{feature}_max"].max()
    if low is None or not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        return None
    raw = (high - low) / 200
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    values = sample[feature]
    if (values == values.round(0)).all():
        step = max(1, int(step))
        return math.floor(low), math.ceil(high), step, "%d"
    decimals = max(0, -math.floor(math.log10(step)))
    low = round(math.floor(low / step) * step, decimals)
    high = round(math.ceil(high / step) * step, decimals)
    return float(low), float(high), float(step), f"%.{decimals}f"


def filtered(sample, chosen, ranges):
    """The sampled rows of the chosen segments within every range."""
    keep = pl.col("segment").is_in(chosen)
    for feature, (low, high) in ranges.items():
        keep &= pl.col(feature).is_between(low, high)
    return sample.filter(keep)


# ----- sections ---------------------------------------------------------------------------
def header(meta):
    st.title("Customer segments")
    left_out = f"; {meta['left_out']:,} with a missing feature left out" if meta["left_out"] else ""
    features = ", ".join(feature_text(f) for f in meta["features"]) or "categorical columns only"
    st.caption(
        f"{meta['k']} segments of {meta['rows']:,} customers in {meta['data']}{left_out}. "
        f"Features: {features}. Scatter and filters: a uniform sample of "
        f"{meta['sample_rows']:,} customers. Made by fastseg {meta['fastseg_version']}."
    )


def sizes_section(segments, chosen):
    """Each chosen segment's name, size and share: a list in its colour, and a bar chart."""
    st.header("Segment sizes")
    shown = segments.filter(pl.col("segment").is_in(chosen))
    if shown.is_empty():
        return
    items = "".join(
        f'<li><span style="color:{c}">&#9632;</span> <b>{html.escape(n)}</b>: '
        f"{size:,} customers ({share:.1%})</li>"
        for n, size, share, c in shown.select("name", "size", "share", "colour").iter_rows()
    )
    st.markdown(f'<ul style="list-style:none;padding-left:0">{items}</ul>', unsafe_allow_html=True)
    text = [f"{size:,} · {share:.1%}" for size, share in shown.select("size", "share").iter_rows()]
    bars = shown.with_columns(text=pl.Series(text, dtype=pl.String))
    room = [0, int(shown["size"].max() * 1.2)]  # for the counts right of the longest bar
    base = alt.Chart(bars).encode(
        x=alt.X(
            "size:Q", title="customers", scale=alt.Scale(domain=room), axis=alt.Axis(format=",d")
        ),
        y=alt.Y("name:N", sort=None, title=None, axis=alt.Axis(labelLimit=0)),
        tooltip=[
            alt.Tooltip("name:N", title="segment"),
            alt.Tooltip("size:Q", title="customers", format=","),
            alt.Tooltip("share:Q", format=".1%"),
        ],
    )
    chart = base.mark_bar().encode(color=colour_scale(shown, legend=None))
    chart += base.mark_text(align="left", dx=4, color="#333333").encode(text="text:N")
    st.altair_chart(chart.properties(height=36 * shown.height + 40), width="stretch")


def profile_section(profile, chosen):
    """The profile (``format_profile``'s table): a column per segment, named by its label."""
    st.header("Segment profiles")
    table = profile.filter(pl.col("segment").is_in(chosen))
    st.caption(
        "Mean (with its z-score: standard deviations from the average customer), median and "
        "the share of each category, in each segment; for all customers, not only the sample."
    )
    st.dataframe(profile_frame(table), hide_index=True)


def profile_frame(table):
    """``format_profile``'s Markdown as a frame; the raw profile if a cell held a '|'."""
    lines = format_profile(table, "markdown").splitlines()
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    names = segment_names(table)
    columns = ["measure", *[names[int(s)] for s in table["segment"]]]
    body = [r for r in rows[2:] if r[0] != "label"]  # the labels name the columns
    if any(len(r) != len(columns) for r in body):
        return table
    return pl.DataFrame(body, schema=columns, orient="row")


def heatmap_section(key, chosen):
    title, caption, png = heatmap_png(*key, chosen)
    st.header(title)
    st.image(png)
    st.caption(caption)


@st.cache_data(show_spinner=False)
def heatmap_png(folder, stamp, chosen):
    """The report's z-score heat map of the chosen segments: (title, caption, PNG bytes)."""
    agg = load(folder, stamp)
    table = agg["profile"].filter(pl.col("segment").is_in(list(chosen)))
    names = segment_names(table, LABEL_WIDTH)
    lines = max(name.count("\n") + 1 for name in names.values())
    row = max(0.42, 0.16 * lines + 0.16)  # inches per segment, as in the report
    colours = dict(enumerate(agg["meta"]["colours"]))
    plt = pyplot()
    with plt.rc_context(STYLE):
        plot = heatmap(plt, table, agg["meta"]["features"], list(chosen), names, colours, row)
    return plot.title, plot.caption, base64.b64decode(png(plt, plot.figure))


def scatter_section(agg, sample, ranges):
    """The sampled customers on the first two principal components, coloured by segment."""
    meta = agg["meta"]
    st.header("The segments in two dimensions (PCA of a sample)")
    if sample.is_empty():
        st.info("No sampled customer matches the filters.")
        return
    names = segment_names_of(agg["segments"])
    points = sample.with_columns(
        name=pl.col("segment").replace_strict(names, return_dtype=pl.String)
    )
    first, second = meta["explained"]
    hidden = alt.Axis(labels=False, ticks=False, grid=False)
    columns = 1 if agg["segments"].height <= 6 else 2
    legend = alt.Legend(title="segment", orient="bottom", columns=columns, labelLimit=0)
    chart = (
        alt.Chart(points)
        .mark_circle(size=16, opacity=0.6)
        .encode(
            x=alt.X("pc1:Q", title=f"direction 1 ({first:.0%} of the differences)", axis=hidden),
            y=alt.Y("pc2:Q", title=f"direction 2 ({second:.0%})", axis=hidden),
            color=colour_scale(agg["segments"], legend=legend),
            tooltip=[alt.Tooltip("name:N", title="segment"), *meta["features"]],
        )
        .properties(height=520)
    )
    st.altair_chart(chart, width="stretch")
    matching = "match the filters" if ranges else "are in the chosen segments"
    st.caption(
        f"{points.height:,} of the {meta['sample_rows']:,} sampled customers {matching}. The "
        "axes are the two directions along which customers differ most (principal components "
        f"of the standardised features); together they show {first + second:.0%} of the "
        "differences, so segments that overlap here may still be apart in the others."
    )


def metrics_section(agg, chosen, sample, ranges):
    """Key metrics by segment: of all customers, then of the sampled ones the filters keep."""
    st.header("Key metrics by segment")
    names = segment_names_of(agg["segments"])
    features = agg["meta"]["features"]
    whole = agg["metrics"].filter(pl.col("segment").is_in(chosen))
    st.subheader("All customers")
    table = whole.select(
        pl.col("segment").replace_strict(names, return_dtype=pl.String),
        pl.col("size").alias("customers"),
        (pl.col("share") * 100).alias("share %"),
        pl.col("mean_distance").alias("mean distance to centre"),
        pl.col("inertia_per_row").alias("inertia per customer"),
        *[pl.col(f"{f}_mean").alias(f"mean {feature_text(f)}") for f in features],
    )
    st.dataframe(table, hide_index=True, column_config=number_formats(table))
    st.subheader("Customers matching the filters" if ranges else "Sampled customers")
    matched = matching_metrics(agg, sample, whole, names)
    st.dataframe(matched, hide_index=True, column_config=number_formats(matched))
    found, of = sample.height, agg["meta"]["sample_rows"]
    st.caption(
        f"{found:,} of {of:,} sampled customers; 'estimated customers' scales each segment's "
        "matching share of its sampled customers to its size."
    )


def matching_metrics(agg, sample, whole, names):
    """Per chosen segment, the sampled customers matching, their share of the segment's
    sample, the customers that share stands for, their mean distance and feature means."""
    sampled = agg["sample"].group_by("segment").agg(sampled=pl.len())
    means = [pl.col(f).mean().alias(f"mean {feature_text(f)}") for f in agg["meta"]["features"]]
    found = sample.group_by("segment").agg(
        pl.len().alias("matching"), pl.col("distance").mean().alias("mean distance"), *means
    )
    ints = pl.col("segment").cast(pl.Int64)
    table = (
        whole.select("segment", "size")
        .join(sampled.with_columns(ints), on="segment", how="left")
        .join(found.with_columns(ints), on="segment", how="left")
        .with_columns(pl.col("matching").fill_null(0))
        .sort("segment")
    )
    share = pl.col("matching") / pl.col("sampled")
    return table.select(
        pl.col("segment").replace_strict(names, return_dtype=pl.String),
        pl.col("matching").alias("sampled customers matching"),
        (share * 100).alias("% of the segment's sample"),
        (share * pl.col("size")).round(0).alias("estimated customers"),
        pl.col("mean distance").alias("mean distance to centre"),
        *[pl.col(m.meta.output_name()) for m in means],
    )


def drift_section(key, agg):
    """The verdict and its reasons, shares before and after, PSI by feature."""
    doc, meta = agg["drift"], agg["meta"]
    st.header("Drift")
    rows = doc["rows"]
    st.caption(
        f"From {meta['reference']} (earlier, {rows['reference']:,} rows) to {meta['data']} "
        f"(later, {rows['new']:,} rows)."
    )
    colour = VERDICT_COLOURS.get(doc["verdict"], "gray")
    st.markdown(
        f"**Verdict: :{colour}[{doc['verdict']}]**. Stable: nothing to do; watch: look "
        "again at the next period; retrain: the segments no longer describe the customers "
        "well, fit the model again."
    )
    st.markdown("\n".join(f"- {markdown_text(r)}" for r in doc["reasons"]))
    tables = {  # under the figure of the same key
        "shares": shares_frame(doc, segment_names_of(agg["segments"])),
        "psi": features_frame(doc),
    }
    for name, (title, caption, image) in drift_pngs(*key).items():
        st.subheader(title)
        st.image(image)
        st.caption(caption)
        if name in tables:
            st.dataframe(tables[name], hide_index=True, column_config=number_formats(tables[name]))


def shares_frame(doc, names):
    return pl.DataFrame(
        {
            "segment": [names.get(s["segment"], str(s["segment"])) for s in doc["segments"]],
            "before %": [100 * s["reference_share"] for s in doc["segments"]],
            "after %": [100 * s["new_share"] for s in doc["segments"]],
            "verdict": [s["verdict"] for s in doc["segments"]],
            "reason": [s["reason"] for s in doc["segments"]],
        }
    )


def features_frame(doc):
    def effect(f):
        return f.get("wasserstein_std") if f["kind"] == "numeric" else f.get("js")

    return pl.DataFrame(
        {
            "feature": [feature_text(f["feature"]) for f in doc["features"]],
            "kind": [f["kind"] for f in doc["features"]],
            "PSI": [f["psi"] for f in doc["features"]],
            "Wasserstein/std or JS": [effect(f) for f in doc["features"]],
            "verdict": [f["verdict"] for f in doc["features"]],
            "reason": [f["reason"] for f in doc["features"]],
        },
        schema_overrides={"PSI": pl.Float64, "Wasserstein/std or JS": pl.Float64},
    )


@st.cache_data(show_spinner=False)
def drift_pngs(folder, stamp):
    """The report's drift figures, keyed as ``drift_plots``' ("shares" before and after,
    "psi" by feature): (title, caption, PNG bytes) each."""
    agg = load(folder, stamp)
    plt = pyplot()
    names = segment_names(agg["profile"], LABEL_WIDTH)
    with plt.rc_context(STYLE):
        plots = drift_plots(plt, drift_result(agg["drift"]), agg["meta"]["colours"], names)
    return {
        name: (p.title, plain_text(p.caption), base64.b64decode(png(plt, p.figure)))
        for name, p in plots.items()
    }


# ----- helpers ----------------------------------------------------------------------------
def number_formats(frame):
    """Thousands separators on the numbers (as the browser's locale writes them), one decimal
    on percentages, three on the drift measures."""
    formats = {}
    for name, kind in frame.schema.items():
        if kind.is_numeric():
            shown = "%.1f" if "%" in name else "%.3f" if name in MEASURES else "localized"
            formats[name] = st.column_config.NumberColumn(format=shown)
    return formats


MEASURES = {"PSI", "Wasserstein/std or JS"}


def segment_names_of(segments):
    """{segment: '0: high income · low age'}."""
    return dict(zip(segments["segment"].to_list(), segments["name"].to_list(), strict=True))


def colour_scale(segments, legend):
    """Each segment's name in its colour (the report's), whichever segments are drawn."""
    return alt.Color(
        "name:N",
        scale=alt.Scale(domain=segments["name"].to_list(), range=segments["colour"].to_list()),
        legend=legend,
    )


def feature_text(name):
    return str(name).replace("_", " ")


def markdown_text(text):
    """``text`` shown as it is in Markdown (no emphasis, links or colour directives)."""
    return re.sub(r"([\\`*_{}\[\]<>()#+!|~$:-])", r"\\\1", str(text))


def plain_text(caption):
    """A report caption (HTML) as plain text."""
    return html.unescape(re.sub(r"<[^>]+>", "", caption))


main()
