"""Drift between periods: have the customers changed, do the segments still hold, who moved
where, must the model be retrained?

``drift(model, new)`` compares new data with the reference profile the model keeps of its
training data (``monitor.reference``), or with a reference data set; one streaming pass per
period (``monitor.scan``), so memory follows the batch whatever the rows. Effect sizes decide
(``monitor.measures``), by explicit rules (``monitor.rules``); p-values are shown beside n only.
"""

import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError, FastsegError
from ..io.tables import TableReader, is_table_input
from ..monitor import measures
from ..monitor.reference import ReferenceProfile
from ..monitor.rules import STABLE, DriftRules, worst
from ..monitor.scan import model_columns, scan
from .segments import aligned, number_text

__all__ = ["DriftResult", "DriftRules", "drift"]

NO_PROFILE = (
    "the model keeps no reference profile of its training data (a format-1 file, one written "
    "before fastseg kept profiles, or one updated by partial_fit): pass the training data or "
    "an earlier period as the reference (--reference OLD, reference=)"
)


@dataclass
class DriftResult:
    """What ``drift`` found: ``verdict`` ("stable", "watch", "retrain") and its ``reasons``,
    a dict per feature and per segment, the segment-level summary and, with ids, the
    migration. ``to_dict()`` is the documented JSON shape; ``to_text()`` the table."""

    verdict: str
    reasons: list
    rows: dict
    features: list
    segments: list
    summary: dict
    rules: DriftRules
    migration: dict | None = None
    notes: list = field(default_factory=list)

    def to_dict(self):
        doc = {
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "rows": dict(self.rows),
            "features": self.features,
            "segments": self.segments,
            **self.summary,
            "rules": self.rules.as_dict(),
        }
        if self.migration is not None:
            doc["migration"] = self.migration
        return doc

    def to_text(self):
        return drift_text(self)


def drift(model, new, reference=None, id=None, *, rules=None, seed=0, spill_dir=None):
    """Compare ``new`` data (Parquet/CSV path(s), a frame; an array for a model fitted on one)
    with the model's reference profile, or with ``reference`` data; returns a ``DriftResult``.

    ``model``: a fitted model or a model file. ``id``: a customer id column of both periods
    (needs ``reference``): the migration matrix between their segments, joined on disk in
    bounded memory (``spill_dir``). ``rules``: a ``DriftRules`` or {rule: (watch, retrain)}.
    ``seed``: the uniform sample the quantiles are taken from.
    """
    model = _fitted(model)
    rules = DriftRules.of(rules)
    if id is not None and reference is None:
        raise DataError(
            "matching customers by id needs the earlier period's data: pass it as the "
            "reference (--reference OLD): the model keeps no customer ids"
        )
    if reference is None and getattr(model, "reference_", None) is None:
        raise DataError(NO_PROFILE)
    new = _reader(model, new)
    migration = None
    if id is not None:
        from ..monitor.migration import Migration

        reference = _reader(model, reference)
        rows = max(reference.count_rows(), new.count_rows())
        migration = Migration(model.n_clusters, rows, spill_dir=spill_dir, column=id)
    try:
        profile = model.reference_ if reference is None else None
        if profile is None:
            old = _reader(model, reference)
            old = scan(model, old, ids=id, migration=migration, side="reference", seed=seed)
            profile = ReferenceProfile.from_sample(old.sample(), model.n_clusters)
        found = scan(
            model, new, reference=profile, ids=id, migration=migration, side="new", seed=seed
        )
        moved = None if migration is None else migration.result()
    finally:
        if migration is not None:
            migration.close()
    return judged(model, profile, found, rules, moved, reference is None)


def judged(model, profile, found, rules, migration=None, from_model=True):
    """The ``DriftResult`` of a new period's ``PeriodScan`` against a reference profile."""
    sample = found.sample()
    numeric, levels = model_columns(model)
    n_ref = profile.rows
    features = [_numeric_drift(profile.feature(n), found, sample, rules, n_ref) for n in numeric]
    features += [_categorical_drift(profile.feature(c), found, rules, n_ref) for c in levels]
    segments, summary = _segment_drift(model, profile, found, rules)
    reasons = [f"{f['feature']}: {f['reason']}" for f in features if f["verdict"] != STABLE]
    reasons += [s["reason"] for s in summary.values() if s["verdict"] != STABLE]
    reasons += [
        f"segment {s['segment']}: {s['reason']}" for s in segments if s["verdict"] != STABLE
    ]
    verdicts = [f["verdict"] for f in features] + [s["verdict"] for s in segments]
    verdicts += [s["verdict"] for s in summary.values()]
    rows = {"reference": profile.rows, "new": found.rows}
    rows["reference_source"] = "the model's profile" if from_model else "the reference data"
    return DriftResult(
        verdict=worst(verdicts),
        reasons=reasons or ["every measure is below its watch level"],
        rows=rows,
        features=features,
        segments=segments,
        summary=summary,
        rules=rules,
        migration=migration,
    )


def _numeric_drift(ref, found, sample, rules, reference_rows):
    name = ref.name
    bins = np.append(found.bins[name], found.missing[name])
    psi = measures.psi(ref.shares, measures.shares(bins))
    values = sample.numeric[name]
    values = values[~np.isnan(values)].astype(np.float64)
    distance = measures.wasserstein(ref.quantiles, values)
    normalised = None if distance is None or ref.std == 0 else distance / ref.std
    present = found.rows - found.missing[name]
    n_ref = round(reference_rows * (1.0 - ref.missing_share))
    d, p = measures.ks_test(ref.shares[:-1], found.bins[name], n_ref)
    judgements = [rules.judge("psi", psi), rules.judge("wasserstein", normalised)]
    return {
        "feature": name,
        "kind": "numeric",
        "psi": psi,
        "wasserstein_std": normalised,
        "out_of_range_share": found.outside[name] / present if present else 0.0,
        "missing_share": {"reference": ref.missing_share, "new": found.missing[name] / found.rows},
        "mean": {"reference": ref.mean, "new": float(values.mean()) if values.size else None},
        "std": {"reference": ref.std, "new": float(values.std()) if values.size else None},
        "ks_statistic": d,
        "p_value": p,
        "test": "ks",
        "n": {"reference": n_ref, "new": present},
        **_verdict(judgements),
    }


def _categorical_drift(ref, found, rules, reference_rows):
    counts = found.level_counts[ref.name]
    new = measures.shares(counts)
    expected = np.round(ref.shares * reference_rows)
    psi = measures.psi(ref.shares, new)
    js = measures.jensen_shannon(ref.shares, new)
    judgements = [rules.judge("psi", psi), rules.judge("js", js)]
    return {
        "feature": ref.name,
        "kind": "categorical",
        "psi": psi,
        "js": js,
        "unseen_share": float(new[-2]),
        "missing_share": {"reference": float(ref.shares[-1]), "new": float(new[-1])},
        "levels": [
            {"level": level, "reference_share": float(ref.shares[i]), "new_share": float(new[i])}
            for i, level in enumerate(ref.levels)
        ],
        "p_value": measures.chi2_test(expected, counts),
        "test": "chi2",
        "n": {"reference": reference_rows, "new": int(counts.sum())},
        **_verdict(judgements),
    }


def _verdict(judgements):
    verdict = worst(v for v, _ in judgements)
    return {"verdict": verdict, "reason": "; ".join(r for _, r in judgements)}


def _segment_drift(model, profile, found, rules):
    """Per segment: shares, centre shift, out-of-distribution share, inertia per row; and the
    summary measures over all segments."""
    assigned = int(found.segment_rows.sum())
    ref_shares, new_shares = profile.segment_shares, measures.shares(found.segment_rows)
    terms = measures.psi_terms(ref_shares, new_shares)
    shifts = _centre_shifts(model, profile, found)
    segments = []
    for s in range(model.n_clusters):
        rows = int(found.segment_rows[s])
        shift, feature = shifts[s]
        verdict, reason = rules.judge("centre_shift", shift)
        segments.append(
            {
                "segment": s,
                "reference_share": float(ref_shares[s]),
                "new_share": float(new_shares[s]),
                "psi": float(terms[s]),
                "rows": rows,
                "centre_shift": shift,
                "centre_shift_feature": feature,
                "ood_share": found.out_of_distribution[s] / rows if rows else None,
                "inertia_per_row": {
                    "reference": float(profile.mean_sq_distance[s]),
                    "new": found.sq_distance[s] / rows if rows else None,
                },
                "verdict": verdict,
                "reason": reason,
            }
        )
    ood = int(found.out_of_distribution.sum()) / assigned if assigned else None
    share_psi = measures.psi(ref_shares, new_shares)
    summary = {
        "segment_shares": _judged(rules, "share_psi", share_psi, "psi"),
        "out_of_distribution": _judged(rules, "ood_share", ood, "share"),
        "inertia_per_row": {
            "reference": profile.inertia_per_row,
            "new": float(found.sq_distance.sum()) / assigned if assigned else None,
            "verdict": STABLE,
            "reason": "shown, not judged",
        },
        "unassigned": {"rows": found.rows - assigned, "verdict": STABLE, "reason": ""},
    }
    return segments, summary


def _judged(rules, rule, value, key):
    verdict, reason = rules.judge(rule, value)
    return {key: value, "verdict": verdict, "reason": reason}


def _centre_shifts(model, profile, found):
    """Per segment, (largest move of a numeric feature in reference stds, that feature) if
    the centre were recomputed from the new rows (a Lloyd step from the model's centres)."""
    pre = model.preprocessor_
    names = pre.feature_names or [f"x{j}" for j in range(pre.n_features)]
    rows = found.segment_rows
    moved = np.asarray(model.cluster_centers_, dtype=np.float64).copy()
    moved[rows > 0] = found.sums[rows > 0] / rows[rows > 0, None]
    before, after = pre.inverse(model.cluster_centers_), pre.inverse(moved)
    numeric, _ = model_columns(model)
    index = [names.index(n) for n in numeric]
    stds = np.array([profile.feature(n).std for n in numeric])
    shifts = []
    for s in range(model.n_clusters):
        if not rows[s] or not index:
            shifts.append((None, None))
            continue
        delta = np.abs(after[s, index] - before[s, index])
        delta = np.where(stds > 0, delta / np.where(stds > 0, stds, 1.0), 0.0)
        j = int(np.argmax(delta))
        shifts.append((float(delta[j]), numeric[j]))
    return shifts


def _fitted(model):
    if isinstance(model, str | os.PathLike):
        from ..cluster.modelfile import load_engine

        return load_engine(model)
    from ..cluster.kprototypes import KPrototypes

    if isinstance(model, KPrototypes):  # (it keeps no profile to compare with)
        raise FastsegError(
            "drift compares data with the profile a model with centres keeps, which a "
            "KPrototypes has not: fit one with fastseg.KMeans"
        )
    model._check_fitted()
    return model


def _reader(model, data):
    if isinstance(data, TableReader) or not is_table_input(data):
        return data
    return TableReader(data, model._derivations())


# ----- the table ------------------------------------------------------------------------
def drift_text(result):
    """The result as text: the verdict and its reasons, then tables by feature, by segment
    and (with ids) the migration matrix."""
    rows = result.rows
    lines = [
        f"new data: {rows['new']:,} rows; reference: {rows['reference']:,} rows "
        f"({rows['reference_source']})",
        f"verdict: {result.verdict}",
        *[f"  - {r}" for r in result.reasons],
        "",
        aligned([FEATURE_HEADER, *[_feature_row(f) for f in result.features]]),
        "",
        aligned([SEGMENT_HEADER, *[_segment_row(s) for s in result.segments]]),
        "",
        _summary_line(result.to_dict()),
    ]
    if result.migration is not None:
        lines += ["", *_migration_lines(result.migration)]
    return "\n".join(lines)


FEATURE_HEADER = [
    "feature",
    "PSI",
    "W/std | JS",
    "out of range",
    "missing (ref -> new)",
    "p-value (n new)",
    "verdict",
]
SEGMENT_HEADER = [
    "segment",
    "share (ref -> new)",
    "PSI term",
    "centre shift (stds)",
    "out of distribution",
    "inertia/row (ref -> new)",
    "verdict",
]


def _feature_row(f):
    numeric = f["kind"] == "numeric"
    effect = f["wasserstein_std"] if numeric else f["js"]
    outside = f["out_of_range_share"] if numeric else f["unseen_share"]
    missing = f["missing_share"]
    p = "-" if f["p_value"] is None else f"{f['p_value']:.2g}"
    return [
        f["feature"] if numeric else f"{f['feature']} (categorical)",
        f"{f['psi']:.3f}",
        "-" if effect is None else f"{effect:.3f}",
        f"{outside:.1%}" + ("" if numeric else " unseen"),
        f"{missing['reference']:.1%} -> {missing['new']:.1%}",
        f"{p} ({f['n']['new']:,})",
        f["verdict"],
    ]


def _segment_row(s):
    inertia = s["inertia_per_row"]
    shift = (
        "-"
        if s["centre_shift"] is None
        else f"{s['centre_shift']:.2f} ({s['centre_shift_feature']})"
    )
    new_inertia = "-" if inertia["new"] is None else number_text(inertia["new"])
    return [
        str(s["segment"]),
        f"{s['reference_share']:.1%} -> {s['new_share']:.1%}",
        f"{s['psi']:.4f}",
        shift,
        "-" if s["ood_share"] is None else f"{s['ood_share']:.1%}",
        f"{number_text(inertia['reference'])} -> {new_inertia}",
        s["verdict"],
    ]


def _summary_line(doc):
    shares, ood, inertia = doc["segment_shares"], doc["out_of_distribution"], doc["inertia_per_row"]
    parts = [f"segment shares: PSI {shares['psi']:.3f} ({shares['verdict']})"]
    if ood["share"] is not None:
        parts.append(f"out of distribution: {ood['share']:.1%} ({ood['verdict']})")
    if inertia["new"] is not None:
        parts.append(
            f"inertia per row: {number_text(inertia['reference'])} -> {number_text(inertia['new'])}"
        )
    if doc["unassigned"]["rows"]:
        parts.append(f"{doc['unassigned']['rows']:,} rows without a segment (missing values)")
    return " · ".join(parts)


def _migration_lines(m):
    k = len(m["matrix"])
    table = [["from \\ to", *[str(j) for j in range(k)]]]
    table += [[str(i), *[f"{v:,}" for v in row]] for i, row in enumerate(m["matrix"])]
    return [
        f"migration of the {m['matched']:,} customers in both periods "
        "(rows: reference segment, columns: new segment)",
        aligned(table),
        f"new customers: {m['new']:,} · lost: {m['lost']:,} · in both but without a segment: "
        f"{m['unassigned']:,} · repeated ids ignored: {m['duplicates']['reference']:,} "
        f"(reference), {m['duplicates']['new']:,} (new) · rows without an id: "
        f"{m['missing_ids']['reference']:,} (reference), {m['missing_ids']['new']:,} (new)",
    ]
