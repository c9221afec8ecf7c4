"""Spill to disk: ``fastseg fit --memory-budget 512MB`` on 100M rows, against the same fit in RAM.

    python benchmarks/spill.py                                      # 100M rows, 512MB budget
    python benchmarks/spill.py --rows 1000000 --memory-budget 8MB   # quick check: spills 32 MB
    python benchmarks/spill.py --spill-dir /mnt/scratch --max-iter 20 --threads 1

The target: "with ``--memory-budget 512MB``, a 100M-row file is clustered with peak RSS under
1.5 GB (spill to disk), same result as in memory". 100M rows x 8 float32 features are 3.2 GB of
decoded rows, so with a 512 MB budget they go to a spill file, and every Lloyd pass reads them
back a chunk at a time. Two runs of the CLI, each a separate process timed from spawn to exit:

* **spilled**: ``python -m fastseg.cli fit DATA --k 8 --features <FEATURES> --seed 0 --model
  A.json --memory-budget 512MB --quiet --overwrite`` (plus ``--max-iter`` and ``--threads`` when
  given);
* **in memory**: the same without ``--memory-budget`` (the default budget is half of physical
  memory; 3.2 GB fits on a 24 GB machine), model ``B.json``.

Peak RSS is ``ru_maxrss`` from ``os.wait4`` on each child. As in ``end_to_end.py`` (whose helpers
this reuses), the parent imports only the standard library and never loads data, because a
child's ``ru_maxrss`` starts at the parent's peak (about 20 MB, stored as the floor). Features
and machine information come from a ``--worker`` child, and the data from ``end_to_end.py``'s
generate worker: ``fastseg.datasets.write_customers(path, rows, seed=0)``, cached as
``benchmarks/data/customers_{rows}.parquet``. One untimed run of each kind on a 20,000-row file
comes first (Numba's on-disk cache, imports), and the input is read once into the page cache.

Checks (not timed):

* **Did it spill?** While a run is going, the parent looks every 0.1 s at the files the child
  holds open (``/proc/PID/fd``) and records the largest regular file without a name (unlinked,
  or ``O_TMPFILE``) in the spill folder: the spill file. The spilled run must have one, the in
  memory run must not. The folder's file system is reported: on ``tmpfs`` the spilled rows would
  still sit in RAM, only outside the process's RSS.
* **Same result?** The two model files (JSON) are compared: largest absolute difference between
  the centres, relative difference of the inertias, ``n_iter`` and cluster sizes, and whether the
  files are byte-identical. The in memory fit may use Hamerly bounds and the spilled one plain
  Lloyd, whose centres agree up to float64 rounding, so "same" means byte-identical or equal
  ``n_iter`` and sizes with centres and inertia within ``--rtol`` (relative, default 1e-9).
* **Nothing left behind**: no ``fastseg-spill-*`` file is left in the spill folder afterwards.

``--spill-dir`` is passed to the CLI as ``--spill-dir`` if it has that option, else as
``TMPDIR`` (the spill file is a ``tempfile.TemporaryFile`` in the system temp folder).
Output: a Markdown table, a verdict line, and the results with machine information in
``benchmarks/results/spill-YYYYmmdd-HHMMSS.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import stat
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from end_to_end import (  # benchmarks/end_to_end.py, next to this file; standard library only
    HERE,
    SEED,
    WARMUP_ROWS,
    customers,
    parent_peak_mb,
    run_json,
    run_measured,
    warm_page_cache,
)

TARGET_RSS_MB = 1536  # the target: peak RSS < 1.5 GB ...
TARGET_BUDGET = "512MB"  # ... with --memory-budget 512MB ...
TARGET_ROWS = 100_000_000  # ... on 100M rows
WARMUP_BUDGET = "64KB"  # 20,000 rows x 8 float32 = 625 KB: the warm-up spills too
WATCH_SECONDS = 0.1
SPILL_PREFIX = "fastseg-spill-"
RUNS = {"spill": "spilled", "memory": "in memory"}


# ----- worker: everything that imports more than the standard library ---------------------
def info_worker(_args):
    """FEATURES, machine information, the default budget, and whether the CLI has --spill-dir."""
    import contextlib
    import io

    from compare import machine_info  # benchmarks/compare.py, next to this file

    from fastseg import config
    from fastseg.cli import main
    from fastseg.datasets import FEATURES

    text = io.StringIO()
    with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
        main(["fit", "--help"])
    print(json.dumps({"features": list(FEATURES), "machine": machine_info(),
                      "default_budget_bytes": config.default_memory_budget(),
                      "cli_has_spill_dir": "--spill-dir" in text.getvalue()}), flush=True)


WORKERS = {"info": info_worker}


# ----- parent: standard library only, so its small peak RSS is the floor ------------------
def parse_size(text):
    """Bytes from '512MB', '2GB', '64KB' (binary units, as ``fastseg fit --memory-budget``)."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([kmgt]?)i?b?\s*", text, flags=re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size; write e.g. 512MB or 2GB")
    return int(float(match[1]) * 1024 ** " kmgt".index(match[2].lower() or " "))


def filesystem(folder):
    """Type of the file system ``folder`` is on (longest mount point in /proc/mounts)."""
    folder, best, kind = os.path.realpath(folder), "", "unknown"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                _, mount, fstype, *_ = line.split()
                mount = mount.replace("\\040", " ")
                inside = folder == mount or folder.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best):
                    best, kind = mount, fstype
    except OSError:
        pass
    return kind


def leftovers(folder):
    """Names of ``fastseg-spill-*`` files in ``folder``."""
    return sorted(p.name for p in Path(folder).glob(SPILL_PREFIX + "*"))


def largest_unnamed_file(pid, folder, skip=()):
    """Bytes of the largest regular file ``pid`` holds open in ``folder`` that has no name.

    ``skip``: (device, inode) of files to ignore (the child's stdout and stderr files)."""
    fds, largest = f"/proc/{pid}/fd", 0
    try:
        names = os.listdir(fds)
    except OSError:
        return 0
    for name in names:
        try:
            target = os.readlink(f"{fds}/{name}")  # '/tmp/#123 (deleted)' for O_TMPFILE
            if not target.endswith(" (deleted)") or os.path.dirname(target) != folder:
                continue
            info = os.stat(f"{fds}/{name}")
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in skip:
            largest = max(largest, info.st_size)
    return largest


def run_watched(cmd, timeout, env, spill_dir):
    """``end_to_end.run_measured`` that also records the largest spill file the child opened."""
    folder, seen = os.path.realpath(spill_dir), [0]

    def watch(pid, own, stop):
        while not stop.wait(WATCH_SECONDS):
            seen[0] = max(seen[0], largest_unnamed_file(pid, folder, own))

    res = run_measured(cmd, timeout, env, watch=watch)
    return {**res, "spill_file_mb": seen[0] / 2**20}


def worker_cmd(name, *extra):
    return [sys.executable, str(Path(__file__).resolve()), "--worker", name, *map(str, extra)]


def commands(path, out_dir, features, budget, info, args):
    """The spilled and in memory commands and their environments, for one input file."""
    base = [sys.executable, "-m", "fastseg.cli", "fit", str(path), "--k", str(args.k),
            "--features", ",".join(features), "--seed", str(SEED), "--quiet", "--overwrite"]
    env = dict(os.environ)
    if args.max_iter:
        base += ["--max-iter", str(args.max_iter)]
    if args.threads:
        base += ["--threads", str(args.threads)]
        env["POLARS_MAX_THREADS"] = str(args.threads)  # fastseg's --threads sets Numba only
    spill = [*base, "--model", str(out_dir / "A.json"), "--memory-budget", budget]
    spill_env = dict(env)
    if args.spill_dir and info["cli_has_spill_dir"]:
        spill += ["--spill-dir", str(args.spill_dir)]
    elif args.spill_dir:
        spill_env["TMPDIR"] = str(args.spill_dir)  # the spill file is a tempfile.TemporaryFile
    memory = [*base, "--model", str(out_dir / "B.json")]
    return {"spill": (spill, spill_env, out_dir / "A.json"),
            "memory": (memory, env, out_dir / "B.json")}


def warm_up(features, info, spill_dir, args):
    """One untimed run of each kind on a small file: Numba cache, imports, .pyc files."""
    path = customers(WARMUP_ROWS, args)
    with tempfile.TemporaryDirectory(prefix="fastseg-bench-warm-") as tmp:
        cmds = commands(path, Path(tmp), features, WARMUP_BUDGET, info, args)
        for name, (cmd, env, _) in cmds.items():
            res = run_watched(cmd, args.timeout, env, spill_dir)
            if res["returncode"]:
                sys.exit(f"warm-up of the {RUNS[name]} run failed:\n{res['stderr'][-2000:]}")


def measure(cmd, env, model, spill_dir, args):
    """One measured run and what its model file says about the fit."""
    res = run_watched(cmd, args.timeout, env, spill_dir)
    run = {"command": cmd, "seconds": res["seconds"], "peak_rss_mb": res["peak_rss_mb"],
           "spill_file_mb": res["spill_file_mb"]}
    if env.get("TMPDIR") != os.environ.get("TMPDIR"):
        run["TMPDIR"] = env.get("TMPDIR")
    if res["returncode"] or not model.exists():
        why = "timed out" if res["timed_out"] else f"exit {res['returncode']}"
        tail = " | ".join(res["stderr"].strip().splitlines()[-3:])
        return {**run, "error": f"{why}: {tail}"}, None
    text = model.read_bytes()
    metrics = json.loads(text)["metrics"]
    run.update(n_iter=metrics["n_iter"], inertia=metrics["inertia"], n_rows=metrics["n_rows"],
               n_rows_dropped=metrics["n_rows_dropped"], cluster_sizes=metrics["cluster_sizes"])
    return run, text


def compare_models(spilled, in_memory, rtol):
    """How far apart two model files are, and whether that counts as the same result."""
    a, b = json.loads(spilled), json.loads(in_memory)
    ca, cb = a["cluster_centers"], b["cluster_centers"]
    centre_diff = max(abs(x - y) for ra, rb in zip(ca, cb, strict=True)
                      for x, y in zip(ra, rb, strict=True))
    centre_scale = max(abs(y) for rb in cb for y in rb) or 1.0
    ia, ib = a["metrics"]["inertia"], b["metrics"]["inertia"]
    inertia_rel = abs(ia - ib) / abs(ib) if ib else abs(ia - ib)
    same_iter = a["metrics"]["n_iter"] == b["metrics"]["n_iter"]
    same_sizes = a["metrics"]["cluster_sizes"] == b["metrics"]["cluster_sizes"]
    identical = spilled == in_memory
    same = identical or (same_iter and same_sizes and centre_diff <= rtol * centre_scale
                         and inertia_rel <= rtol)
    return {"same_result": same, "byte_identical": identical,
            "centres_max_abs_diff": centre_diff, "centres_max_abs": centre_scale,
            "inertia_rel_diff": inertia_rel, "n_iter_equal": same_iter,
            "cluster_sizes_equal": same_sizes, "scaling_equal": a["scaling"] == b["scaling"],
            "keys_that_differ": sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k)),
            "rtol": rtol}


def table(runs, budget, info):
    """Markdown table of the two runs."""
    default_gb = info["default_budget_bytes"] / 2**30
    labels = {"spill": f"spilled, `--memory-budget {budget}`",
              "memory": f"in memory (default budget, {default_gb:.1f} GB)"}
    lines = ["| run | seconds | peak RSS MB | n_iter | inertia | spill file MB (largest seen) |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, run in runs.items():
        if "error" in run:
            lines.append(f"| {labels[name]} | failed: {run['error']} | | | | |")
            continue
        lines.append(f"| {labels[name]} | {run['seconds']:.2f} | {run['peak_rss_mb']:.0f} | "
                     f"{run['n_iter']} | {run['inertia']:.9g} | {run['spill_file_mb']:.1f} |")
    return "\n".join(lines)


def verdict(runs, check, budget_bytes, rows):
    """The target, met or not, in one line."""
    spill = runs["spill"]
    if "error" in spill or check is None:
        return "verdict: no verdict, a run failed"
    rss, margin = spill["peak_rss_mb"], TARGET_RSS_MB - spill["peak_rss_mb"]
    met = f"met by {margin:.0f} MB" if margin > 0 else f"not met by {-margin:.0f} MB"
    if check["byte_identical"]:
        why = "byte-identical model files"
    else:
        why = (f"centres max |diff| {check['centres_max_abs_diff']:.3g} (largest |centre| "
               f"{check['centres_max_abs']:.3g}), inertia rel diff "
               f"{check['inertia_rel_diff']:.3g}, n_iter {spill['n_iter']} vs "
               f"{runs['memory']['n_iter']}, cluster sizes "
               f"{'equal' if check['cluster_sizes_equal'] else 'differ'}; files not "
               f"byte-identical")
    line = (f"peak RSS {rss:.0f} MB with a {budget_bytes / 2**20:g} MB budget (target < "
            f"{TARGET_RSS_MB} MB): {met}; same result as in memory: "
            f"{'yes' if check['same_result'] else 'no'} ({why})")
    if rows != TARGET_ROWS or budget_bytes != parse_size(TARGET_BUDGET):
        line += (f"\n(the target is for {TARGET_ROWS:,} rows and a {TARGET_BUDGET} budget; this "
                 f"run: {rows:,} rows)")
    return line


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=TARGET_ROWS,
                   help=f"customers in the file (default {TARGET_ROWS})")
    p.add_argument("--memory-budget", default=TARGET_BUDGET,
                   help=f"budget of the spilled run, as for fastseg fit (default {TARGET_BUDGET})")
    p.add_argument("--k", type=int, default=8, help="clusters (default 8)")
    p.add_argument("--max-iter", type=int, default=None,
                   help="passed to both runs (default: the CLI's, 300)")
    p.add_argument("--threads", type=int, default=None,
                   help="passed to both runs, and POLARS_MAX_THREADS (default: all cores)")
    p.add_argument("--spill-dir", type=Path, default=None,
                   help="folder for the spill file (default: the system temp folder)")
    p.add_argument("--rtol", type=float, default=1e-9,
                   help="relative tolerance for 'same result' on centres and inertia "
                        "(default 1e-9)")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per run (default 3600)")
    p.add_argument("--data-dir", type=Path, default=HERE / "data",
                   help="cache of generated Parquet files (default benchmarks/data)")
    p.add_argument("--out", type=Path, default=HERE / "results",
                   help="folder for the JSON results (default benchmarks/results)")
    p.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        args.budget_bytes = parse_size(args.memory_budget)
    except argparse.ArgumentTypeError as exc:
        p.error(str(exc))
    if args.spill_dir and not args.spill_dir.is_dir():
        p.error(f"--spill-dir {args.spill_dir} is not a folder")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return WORKERS[args.worker](args)
    stamp = datetime.now()
    info = run_json(worker_cmd("info"), args.timeout)
    info.pop("_run")
    features, machine = info["features"], info["machine"]
    spill_dir = str(args.spill_dir or tempfile.gettempdir())
    fstype = filesystem(spill_dir)
    via = "--spill-dir" if info["cli_has_spill_dir"] else "TMPDIR"
    decoded_mb = args.rows * len(features) * 4 / 2**20
    threads = f"{args.threads} threads" if args.threads else "default threads (all cores)"
    print(f"fastseg {machine['fastseg']}, {machine['cpu_count']} CPUs ({machine['cpu_model']}), "
          f"{machine['memory_gb']} GB RAM; {args.rows:,} rows x {len(features)} float32 = "
          f"{decoded_mb:,.0f} MB decoded, budget {args.memory_budget}; k={args.k}, "
          f"max_iter={args.max_iter or 'CLI default'}, {threads}; spill folder {spill_dir} "
          f"({fstype}{', via ' + via if args.spill_dir else ''})", flush=True)
    if decoded_mb * 2**20 <= args.budget_bytes:
        print(f"warning: {decoded_mb:,.0f} MB fits the {args.memory_budget} budget: nothing "
              f"will spill", flush=True)
    if decoded_mb * 2**20 > info["default_budget_bytes"]:
        print("warning: the decoded rows exceed the default budget: the 'in memory' run will "
              "spill too", flush=True)
    if fstype in ("tmpfs", "ramfs"):
        print(f"warning: {spill_dir} is on {fstype}: spilled rows stay in RAM (outside RSS)",
              flush=True)
    warm_up(features, info, spill_dir, args)
    path = customers(args.rows, args)
    warm_page_cache(path)
    before = leftovers(spill_dir)
    free_gb = os.statvfs(spill_dir).f_bavail * os.statvfs(spill_dir).f_frsize / 2**30
    runs, texts = {}, {}
    with tempfile.TemporaryDirectory(prefix="fastseg-bench-spill-") as tmp:
        cmds = commands(path, Path(tmp), features, args.memory_budget, info, args)
        for name, (cmd, env, model) in cmds.items():
            runs[name], texts[name] = measure(cmd, env, model, spill_dir, args)
            r = runs[name]
            shown = r.get("error") or (f"{r['seconds']:.2f} s, {r['peak_rss_mb']:.0f} MB, "
                                       f"spill file {r['spill_file_mb']:.1f} MB")
            print(f"  {RUNS[name]}: {shown}", flush=True)
    left = [n for n in leftovers(spill_dir) if n not in before]
    check = None
    if all(texts.values()):
        check = compare_models(texts["spill"], texts["memory"], args.rtol)
    spilled = runs["spill"]["spill_file_mb"] > 0
    spill = {"folder": spill_dir, "filesystem": fstype, "passed_via": via if args.spill_dir
             else None, "free_gb_before": free_gb, "spilled_run_spilled": spilled,
             "in_memory_run_spilled": runs["memory"]["spill_file_mb"] > 0,
             "files_left": left, "files_left_before": before}
    floor = parent_peak_mb()

    print(f"\n### {args.rows:,} rows, k={args.k}, {threads}\n")
    print(table(runs, args.memory_budget, info))
    held = (f"held a spill file of {runs['spill']['spill_file_mb']:.1f} MB" if spilled
            else "held NO spill file")
    other = "held a spill file" if spill["in_memory_run_spilled"] else "held none"
    gone = f"left behind: {', '.join(left)}" if left else f"no {SPILL_PREFIX}* files left behind"
    print(f"\nspill folder {spill_dir} ({fstype}, {free_gb:,.0f} GB free before): spilled run "
          f"{held}; in memory run {other}; {gone}")
    print(f"seconds = spawn to exit of the process; peak RSS = ru_maxrss from os.wait4 (floor: "
          f"this parent's peak, {floor:.0f} MB)")
    print("\n" + verdict(runs, check, args.budget_bytes, args.rows), flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"spill-{stamp:%Y%m%d-%H%M%S}.json"
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                if k != "worker"}
    settings.update(seed=SEED, features=features, warmup_rows=WARMUP_ROWS,
                    warmup_budget=WARMUP_BUDGET, decoded_mb=decoded_mb,
                    default_budget_bytes=info["default_budget_bytes"],
                    target_rss_mb=TARGET_RSS_MB, parent_peak_rss_mb=floor)
    out.write_text(json.dumps({
        "date": stamp.astimezone().isoformat(timespec="seconds"), "command": sys.argv,
        "machine": machine, "settings": settings,
        "data": {"file": str(path), "file_mb": path.stat().st_size / 2**20},
        "runs": runs, "spill": spill, "comparison": check,
        "verdict": verdict(runs, check, args.budget_bytes, args.rows)}, indent=2))
    print(f"results written to {out}")


if __name__ == "__main__":
    main()
