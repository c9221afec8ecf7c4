"""Regenerate the READMEs' benchmark figure tables from the newest results JSON of each benchmark.

    python scripts/refresh_readme_figures.py            # print every block
    python scripts/refresh_readme_figures.py --write    # replace the blocks in the READMEs

Why: the figures in README.md and benchmarks/README.md were typed in by hand from
``benchmarks/results/*.json``, and go stale (or get mistyped) with every new run. Each table sits
between a pair of marker comments, e.g. ``<!-- figures:compare -->`` and
``<!-- /figures:compare -->``; ``--write`` replaces what is between them and nothing else, so the
prose around a table stays hand-written. A block's first line names the JSON it came from.

Blocks and the results they come from (the newest ``PREFIX-YYYYmmdd-HHMMSS.json`` that has them):

* ``compare``: compare.py, fastseg KMeans vs scikit-learn Lloyd (and Elkan), per row count;
* ``minibatch``: compare.py, fastseg vs scikit-learn MiniBatchKMeans;
* ``end_to_end``: end_to_end.py, ``fastseg fit`` vs the pandas + scikit-learn script;
* ``cost_growth``: cost_growth.py, the rows table and the k table;
* ``spill``: spill.py, the spilled and the in-memory run.

The formats follow the tables the READMEs had when this script was written: refreshed from the
JSON they cite, the end_to_end and spill tables come out unchanged, and the cost_growth tables
differ only in three cells the hand-typed copy rounded up wrongly (e.g. 0.3150 typed as 0.32).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md"]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmarks' own names and formats

from compare import BASELINE  # noqa: E402  (benchmarks/compare.py)
from compare import LLOYD as LLOYD_LABELS  # noqa: E402
from compare import MINIBATCH as MINIBATCH_LABELS  # noqa: E402
from cost_growth import short  # noqa: E402
from end_to_end import METHODS as E2E_METHODS  # noqa: E402

LLOYD, MINIBATCH = list(LLOYD_LABELS), list(MINIBATCH_LABELS)


def ok_results(size, methods):
    """The successful results of ``size`` for ``methods``, by method, or None if one is missing."""
    found = {r["method"]: r for r in size["results"] if "error" not in r}
    return found if all(m in found for m in methods) else None


# ----- one renderer per block: results dict -> Markdown ------------------------------------
def render_compare(data):
    s = data["settings"]
    lines = ["| rows | method | seconds | vs scikit-learn Lloyd | peak RSS MB | n_iter "
             "| labels ≠ scikit-learn Lloyd |", "|---:|---|---:|---:|---:|---:|---:|"]
    notes = []
    for size in data["sizes"]:
        res = ok_results(size, [LLOYD[0], BASELINE])
        if not res:
            continue
        base, agree = res[BASELINE]["seconds"], size["label_agreement_vs_sklearn_lloyd"]
        for m in (m for m in LLOYD if m in res):
            r = res[m]
            same = ("reference" if m == BASELINE else
                    f"{agree[m]['rows_differing']:,} of {size['n_rows']:,}" if m in agree else "-")
            lines.append(f"| {short(size['rows'])} | {r['label']} | {r['seconds']:.3f} "
                         f"| {base / r['seconds']:.2f}× | {r['peak_rss_mb']:,.0f} "
                         f"| {r['n_iter']} | {same} |")
        p = res["fastseg-kmeans"].get("lloyd_pass") or {}
        if p.get("pass_seconds"):
            notes.append(f"{short(size['rows'])} rows: {p['pass_seconds'] * 1e3:.1f} ms vs "
                         f"{p['numpy_sum_seconds'] * 1e3:.1f} ms "
                         f"({p['pass_seconds'] / p['numpy_sum_seconds']:.2f}×)")
    lines.append(f"\nk={s['k']}, `max_iter={s['iters']}`, `tol=0`, the same initial centres, "
                 f"{s['threads']} threads, best of {s['repeat']}.")
    if notes:
        lines.append("One fastseg Lloyd pass vs one NumPy `X.sum()` over the array: "
                     + "; ".join(notes) + ".")
    return "\n".join(lines)


def render_minibatch(data):
    s = data["settings"]
    lines = ["| rows | batch | method | seconds | speed-up | steps | inertia / scikit-learn's |",
             "|---:|---:|---|---:|---:|---:|---:|"]
    for size in data["sizes"]:
        for b in s["batch_size"]:
            pair = {r["method"]: r for r in size["results"]
                    if r.get("batch_size") == b and "error" not in r}
            if not all(m in pair for m in MINIBATCH):
                continue
            sk = pair["sklearn-minibatch"]
            for r in (pair[m] for m in MINIBATCH):
                lines.append(f"| {short(size['rows'])} | {b:,} | {r['label']} "
                             f"| {r['seconds']:.2f} | {sk['seconds'] / r['seconds']:.1f}× "
                             f"| {r['n_steps']} | {r['inertia'] / sk['inertia']:.4f} |")
    rule = ("scikit-learn's default early stopping in both" if s["stopping"] == "default"
            else "`max_iter=1`, no early stopping: rows // batch steps in both")
    lines.append(f"\nk={s['k']}, {rule}, the same initial centres, {s['threads']} threads, "
                 f"best of {s['repeat']}.")
    return "\n".join(lines)


def render_end_to_end(data):
    lines = ["| rows | method | wall s | speed-up | peak RSS MB | RSS ratio | n_iter |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for size in data["sizes"]:
        res, base = size["results"], size["results"]["pandas"]
        for m, label in E2E_METHODS.items():
            r = res[m]
            if "error" in r or "error" in base:
                lines.append(f"| {short(size['rows'])} | {label} | failed | | | | |")
                continue
            lines.append(f"| {short(size['rows'])} | {label} | {r['seconds']:.2f} "
                         f"| {base['seconds'] / r['seconds']:.2f}x | {r['peak_rss_mb']:.0f} "
                         f"| {r['peak_rss_mb'] / base['peak_rss_mb']:.2f} "
                         f"| {r.get('n_iter', '-')} |")
    return "\n".join(lines)


def render_cost_growth(data):
    s = data["settings"]
    tables = []
    for grid, first, key in (("rows_grid", f"rows (k={s['rows_k']})", "rows"),
                             ("k_grid", f"k ({short(s['k_rows'])} rows)", "k")):
        lines = [f"| {first} | total s | read s | preprocess s | init s | iterations s "
                 "| ns per row per iteration | peak RSS MB |",
                 "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in data[grid]:
            name = short(r["rows"]) if key == "rows" else str(r["k"])
            if "error" in r:
                lines.append(f"| {name} | failed | | | | | | |")
                continue
            t = r["timings"]
            ns = t["iterations"] / max(r["n_iter"], 1) / r["n_rows"] * 1e9
            lines.append(f"| {name} | {r['seconds']:.2f} | {t['read']:.2f} "
                         f"| {t['preprocess']:.2f} | {t['init']:.2f} | {t['iterations']:.2f} "
                         f"| {ns:.1f} | {r['peak_rss_mb']:,.0f} |")
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def render_spill(data):
    s, runs = data["settings"], data["runs"]
    labels = {"spill": f"spilled, `--memory-budget {s['memory_budget']}`", "memory": "in memory"}
    lines = ["| run | seconds | peak RSS MB | n_iter | inertia |", "|---|---:|---:|---:|---:|"]
    for name, label in labels.items():
        r = runs[name]
        if r.get("spill_file_mb"):
            label += f" (spill file {r['spill_file_mb']:,.0f} MB)"
        if "error" in r:
            lines.append(f"| {label} | failed | | | |")
            continue
        lines.append(f"| {label} | {r['seconds']:.1f} | {r['peak_rss_mb']:,.0f} "
                     f"| {r['n_iter']} | {r['inertia']:.0f} |")
    return "\n".join(lines)


def has_lloyd(data):
    return any(ok_results(size, [LLOYD[0], BASELINE]) for size in data.get("sizes", []))


def has_minibatch(data):
    return any(ok_results(size, MINIBATCH) for size in data.get("sizes", []))


# name: (results file prefix, does this file have the block's results?, renderer)
BLOCKS = {
    "compare": ("compare", has_lloyd, render_compare),
    "minibatch": ("compare", has_minibatch, render_minibatch),
    "end_to_end": ("end_to_end", lambda d: bool(d.get("sizes")), render_end_to_end),
    "cost_growth": ("cost_growth", lambda d: bool(d.get("rows_grid") or d.get("k_grid")),
                    render_cost_growth),
    "spill": ("spill", lambda d: "runs" in d, render_spill),
}


def newest(results, prefix, wanted):
    """(path, data) of the newest ``PREFIX-*.json`` in ``results`` that ``wanted`` accepts."""
    pattern = re.compile(rf"{re.escape(prefix)}-\d{{8}}-\d{{6}}\.json")
    for path in sorted(results.glob(f"{prefix}-*.json"), key=lambda p: p.name, reverse=True):
        if pattern.fullmatch(path.name):
            data = json.loads(path.read_text())
            if wanted(data):
                return path, data
    return None, None


def blocks(results):
    """{name: Markdown body} for every block that has results; the body names its source."""
    out = {}
    for name, (prefix, wanted, render) in BLOCKS.items():
        path, data = newest(results.resolve(), prefix, wanted)
        if path is not None:
            source = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            out[name] = f"<!-- from {source} -->\n{render(data)}"
    return out


def replace_blocks(text, bodies):
    """``text`` with the body of every marked block in ``bodies`` replaced; and their names."""
    done = []
    for name, body in bodies.items():
        pattern = re.compile(rf"(<!-- figures:{name} -->\n).*?(<!-- /figures:{name} -->)", re.S)
        text, n = pattern.subn(lambda m, body=body: f"{m[1]}{body}\n{m[2]}", text)
        done += [name] * n
    return text, done


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results",
                   help="folder of results JSON (default benchmarks/results)")
    p.add_argument("--readme", type=Path, action="append",
                   help="a file with marker comments; repeat for more "
                        "(default README.md and benchmarks/README.md)")
    p.add_argument("--write", action="store_true",
                   help="replace the marked blocks in the files instead of printing them")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    bodies = blocks(args.results)
    missing = [name for name in BLOCKS if name not in bodies]
    if missing:
        print(f"no results in {args.results} for: {', '.join(missing)}", file=sys.stderr)
    if not args.write:
        for name, body in bodies.items():
            print(f"<!-- figures:{name} -->\n{body}\n<!-- /figures:{name} -->\n")
        return 0
    placed = []
    for readme in args.readme or READMES:
        text = readme.read_text()
        new, done = replace_blocks(text, bodies)
        placed += done
        if new != text:
            readme.write_text(new)
        print(f"{readme}: " + (", ".join(done) + (" (changed)" if new != text else
                                                 " (unchanged)") if done else "no markers"))
    unplaced = [name for name in bodies if name not in placed]
    if unplaced:
        print("no markers anywhere for: " + ", ".join(f"<!-- figures:{n} -->" for n in unplaced),
              file=sys.stderr)
    return 0 if placed else 1


if __name__ == "__main__":
    sys.exit(main())
