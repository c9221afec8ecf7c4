#!/usr/bin/env bash
# Run the whole benchmark suite in the order and with the arguments the READMEs' figures come
# from, then print the figure blocks refreshed from the new results.
#
#   bash scripts/run_benchmarks.sh            # full: results in benchmarks/results/, plot in docs/
#   bash scripts/run_benchmarks.sh --quick    # smoke run: small files, one repeat, a few minutes
#   options: --out DIR (results folder), --dry-run (print the commands, run nothing)
#
# Why one script: the READMEs quote ratios from one run of each benchmark, and which arguments
# each figure needs (which methods, --stopping default, --repeat) is easy to get wrong by hand.
# --quick writes its results (and the cost_growth plot) to $TMPDIR/fastseg-bench-quick unless
# --out says otherwise: in benchmarks/results they would become the newest JSON that
# refresh_readme_figures.py reads, and the plot would replace docs/cost_growth.png.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python}
quick=0 dry=0 out=""
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --dry-run) dry=1 ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    -h | --help) sed -n '2,7p' "$0" | cut -c3-; exit 0 ;;
    *) echo "run_benchmarks.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

run() {  # echo a command, then run it unless --dry-run
  echo "+ $*"
  ((dry)) || "$@"
}

if ((quick)); then
  out=${out:-${TMPDIR:-/tmp}/fastseg-bench-quick}
  data=(--rows 100000,200000)
  lloyd=(--rows 100000 --repeat 1)
  minibatch=(--rows 100000 --repeat 1)
  e2e=(--rows 100000 --repeat 1)
  growth=(--rows 100000,200000 --k 4,8 --k-rows 200000 --plot "$out/cost_growth.png")
  spill=(--rows 200000 --memory-budget 2MB)
  labels=(--rows 200000)
  drift=(--rows 200000 --repeat 1)
  assign=(--records 1000 --rounds 1)
  serve=(--seconds 1)
  kproto=(--rows 2000)
  kernel=(--quick --repeat 1)
  startup=(--repeat 1)
else
  out=${out:-benchmarks/results}
  data=()  # every size the suite reads, 100M rows included
  lloyd=(--rows 1000000,10000000 --repeat 3)
  minibatch=(--rows 10000000 --repeat 1)  # scikit-learn's fit alone takes about 50 s
  e2e=(--rows 1000000,10000000 --repeat 3)
  growth=()  # 1M-20M rows at k=8, k = 4-64 at 10M rows; plot docs/cost_growth.png
  spill=()   # 100M rows, --memory-budget 512MB
  labels=()  # predict and fit --labels on 10M, 20M and 40M rows
  drift=()   # drift against predict on 10M rows, 3 rounds (prints its table)
  assign=()  # model.assign on 10,000 records, 5 rounds, against scikit-learn's predict
  serve=()   # fastseg serve on loopback, 1 and 2 connections
  kproto=()  # k-prototypes against the kmodes package on 20,000 customers (kmodes: ~20 s)
  kernel=()  # Lloyd in memory against scikit-learn: 10M x 8 k=8, 1M rows at k=64 and 256
  startup=() # a cold and a warm demo, fit of 10k rows, first and second fit in a process
fi
((dry)) || mkdir -p "$out"

run "$PYTHON" scripts/make_benchmark_data.py ${data[@]+"${data[@]}"}
run "$PYTHON" benchmarks/compare.py "${lloyd[@]}" --k 8 \
  --methods fastseg-kmeans,sklearn-lloyd,sklearn-elkan --out "$out"
run "$PYTHON" benchmarks/compare.py "${minibatch[@]}" --k 8 \
  --methods sklearn-minibatch,fastseg-minibatch --stopping default --out "$out"
run "$PYTHON" benchmarks/end_to_end.py "${e2e[@]}" --k 8 --out "$out"
run "$PYTHON" benchmarks/cost_growth.py ${growth[@]+"${growth[@]}"} --out "$out"
run "$PYTHON" benchmarks/spill.py ${spill[@]+"${spill[@]}"} --out "$out"
run "$PYTHON" benchmarks/labels_memory.py ${labels[@]+"${labels[@]}"} --out "$out"
# (these six have no figure blocks: the READMEs quote their figures by hand)
run "$PYTHON" benchmarks/drift_speed.py ${drift[@]+"${drift[@]}"} --out "$out"
run "$PYTHON" benchmarks/assign_speed.py ${assign[@]+"${assign[@]}"} --out "$out"
run "$PYTHON" benchmarks/serve_load.py ${serve[@]+"${serve[@]}"} --out "$out"
run "$PYTHON" benchmarks/kprototypes_speed.py ${kproto[@]+"${kproto[@]}"} --out "$out"
run "$PYTHON" benchmarks/lloyd_speed.py ${kernel[@]+"${kernel[@]}"} --out "$out"
run "$PYTHON" benchmarks/startup.py ${startup[@]+"${startup[@]}"} --out "$out"
run "$PYTHON" scripts/refresh_readme_figures.py --results "$out"
echo "results in $out"
