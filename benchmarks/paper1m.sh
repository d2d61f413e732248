#!/usr/bin/env bash
# Issue 33's 1M-step study on a 2-core machine: one core trains the dense runs, the other the DAPD runs
# (ours, then the authors' variant) and then dense runs too, seed-major, each a 1-thread process from a snapshot of HEAD, so that
# editing the checkout never changes a running study. Re-running continues both sweeps (finished runs are
# skipped, cut ones resumed from their last checkpoint); finished runs whose records are already in
# benchmarks/records/paper1m are seeded as finished so they are not trained again.
#   bash benchmarks/paper1m.sh [BENCH_DIR]      (default ~/neuropath-bench), then, as runs finish:
#   python benchmarks/run_records.py BENCH_DIR/paper1m benchmarks/records/paper1m --cut benchmarks/records/paper1m-cut
#   (and the same for BENCH_DIR/paper1m-dense; --cut keeps the unfinished runs as far as they got)
# The smoke run (tests/test_benchmarks.py) shrinks it with PAPER1M_STEPS, PAPER1M_ENVS, PAPER1M_SEEDS, PAPER1M_SET
# (the sweeps' --set), PAPER1M_RECORDS (the records seeded as finished; empty: none), PAPER1M_PYTHON, and
# PAPER1M_WAIT=1 (wait for the sweeps instead of leaving them in the background).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bench="$(mkdir -p "${1:-$HOME/neuropath-bench}" && cd "${1:-$HOME/neuropath-bench}" && pwd)"
steps="${PAPER1M_STEPS:-1000000}"
envs="${PAPER1M_ENVS:-HalfCheetah-v5 Hopper-v5}"
seeds="${PAPER1M_SEEDS:-0 1 2}"
sets="${PAPER1M_SET-checkpoint_every=20000}"
records="${PAPER1M_RECORDS-$repo/benchmarks/records/paper1m}"
py="${PAPER1M_PYTHON:-$repo/.venv/bin/python}"
rev="$(git -C "$repo" rev-parse --short HEAD)"
src="$bench/src-$rev"
mkdir -p "$src"
[ -f "$src/pyproject.toml" ] || git -C "$repo" archive HEAD | tar -x -C "$src"
# shellcheck disable=SC2206  # the lists are words on purpose
common=(--envs $envs --keep 0.05 --seeds $seeds --steps "$steps" --jobs 1)
for s in $sets; do common+=(--set "$s"); done
export PYTHONPATH="$src/src"
cd "$bench"
# Write each sweep's grid first (what `neuropath sweep OUT --envs ...` writes), so that the records seeded
# below sit in a sweep folder rather than in a folder that the sweep refuses to adopt.
for sweep in paper1m-dense:dense paper1m:dapd,dapd@authors; do
    "$py" - "${sweep%%:*}" "${sweep#*:}" "$envs" "$seeds" "$steps" "$sets" <<'PY'
import sys
from pathlib import Path
from neuropath.experiments import sweep
out, methods, envs, seeds, steps, sets = sys.argv[1:]
grid = sweep.Grid(envs.split(), methods.split(","), [0.05], [int(s) for s in seeds.split()], int(steps),
                  sets.split()).validate()
sweep.merge_into(Path(out), grid)
PY
done
if [ -n "$records" ]; then
    for rec in "$records"/*/; do
        name="$(basename "$rec")"
        case "$name" in *dense*) sweep=paper1m-dense ;; *) sweep=paper1m ;; esac
        [ -d "$rec" ] || continue
        dest="$bench/$sweep/runs/$name"
        [ -e "$dest" ] || { mkdir -p "$dest"; cp "$rec"/metrics.csv "$rec"/config.yaml "$dest"/; }
    done
fi
setsid nohup "$py" -m neuropath.cli sweep paper1m-dense "${common[@]}" --methods dense \
    >> "$bench/paper1m-dense.log" 2>&1 < /dev/null &
dense=$!
# A DAPD run takes about an hour of one core, a dense one 4-7: once the DAPD sweep is done, its core joins
# the dense sweep (a second worker skips the run the first one trains).
setsid nohup bash -c '"$1" -m neuropath.cli sweep paper1m "${@:3}" --methods dapd dapd@authors \
    >> "$2/paper1m.log" 2>&1; exec "$1" -m neuropath.cli sweep paper1m-dense "${@:3}" --methods dense \
    >> "$2/paper1m-dense.log" 2>&1' _ "$py" "$bench" "${common[@]}" < /dev/null > /dev/null 2>&1 &
dapd=$!
echo "started from $src: logs $bench/paper1m.log, $bench/paper1m-dense.log"
if [ "${PAPER1M_WAIT:-0}" = 1 ]; then
    wait "$dense"
    wait "$dapd"
fi
