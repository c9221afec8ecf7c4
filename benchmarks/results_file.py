"""The ``--out`` option and the one JSON results file a run, shared by the benchmark scripts.

Every benchmark writes one stamped JSON file a run, ``OUT/<name>-YYYYmmdd-HHMMSS.json``, into
``--out`` (default ``benchmarks/results``); scripts/refresh_readme_figures.py and the READMEs
read them. The option, the file name and the keys every file has (the date, the command and
the settings) are defined here for the scripts that use it (assign_speed, drift_speed,
kprototypes_speed, serve_load, lloyd_speed, startup); each adds its own figures. The older
scripts (compare, cost_growth, end_to_end, spill, dask_scaleout, labels_memory) still write
their own files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def add_out_option(parser):
    """``--out FOLDER`` on an argparse parser."""
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help="folder for the JSON results (default benchmarks/results)",
    )


def write_results(args, name, stamp, figures):
    """Write ``args.out/<name>-<stamp>.json`` and return its path.

    ``stamp`` is the run's start (a datetime); the file holds the date, the command
    (``sys.argv``), the settings (``vars(args)``, paths as strings), then ``figures``' keys."""
    doc = {
        "date": stamp.isoformat(timespec="seconds"),
        "command": sys.argv,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        **figures,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{name}-{stamp:%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path
