#!/usr/bin/env bash
# Issue 33's 1M-step study on a 2-core machine: two workers, each a chain of sweeps, each run a 1-thread
# process from a snapshot of HEAD, so that editing the checkout never changes a running study.
#   worker 1: tier-1 dense runs, then tier 2
#   worker 2: tier-1 DAPD runs (ours, then the authors' variant), then tier-1 dense runs, then tier 2
# Tier 2, in the issue's order: Walker2d-v5 (dense, dapd, dapd@authors), RigL and RLx2 on HalfCheetah and
# Hopper, seeds 3-4 of tier 1; each its own sweep folder. Both workers share every sweep (a worker skips
# the run the other trains). Re-running continues everything (finished runs are skipped, cut ones resumed
# from their last checkpoint); finished runs whose records are in benchmarks/records/paper1m are seeded
# into their sweep as finished, so a new machine does not train them again.
#   bash benchmarks/paper1m.sh [BENCH_DIR]      (default ~/neuropath-bench), then, as runs finish, per sweep S:
#   python benchmarks/run_records.py BENCH_DIR/S benchmarks/records/paper1m --cut benchmarks/records/paper1m-cut
#   (--cut keeps the unfinished runs as far as they got)
# PAPER1M_THREADS=2: one worker instead of two, running each stage's sweep on both cores: a stage with dense runs
# one run at a time on 2 threads (a dense 1M run then takes ~1.8 h instead of 3-5, so it finishes within a
# machine's session of ~3 hours; side by side on 1 thread each, none does), a stage of sparse methods two runs at
# a time on 1 thread each (the sparse kernels are single-threaded). Worker 1's order: dense, DAPD, tier 2.
# PAPER1M_AFTER="PID1 PID2": worker i starts when process PIDi has ended (to chain after workers already
# running, e.g. from an older snapshot, without stopping them).
# The smoke run (tests/test_benchmarks.py) shrinks it with PAPER1M_STEPS, PAPER1M_ENVS, PAPER1M_SEEDS, PAPER1M_SET
# (the sweeps' --set), PAPER1M_TIER2 (the tier-2 stages, "FOLDER|ENVS|METHODS|SEEDS" separated by ";"; empty:
# none), PAPER1M_RECORDS (the records seeded as finished; empty: none), PAPER1M_PYTHON, and PAPER1M_WAIT=1
# (wait for the workers instead of leaving them in the background).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bench="$(mkdir -p "${1:-$HOME/neuropath-bench}" && cd "${1:-$HOME/neuropath-bench}" && pwd)"
steps="${PAPER1M_STEPS:-1000000}"
envs="${PAPER1M_ENVS:-HalfCheetah-v5 Hopper-v5}"
seeds="${PAPER1M_SEEDS:-0 1 2}"
sets="${PAPER1M_SET-checkpoint_every=20000}"
# (dense and sparse methods in separate stages, so that each runs on its own layout with PAPER1M_THREADS=2)
tier2="${PAPER1M_TIER2-paper1m-walker-dense|Walker2d-v5|dense|0 1 2;paper1m-walker|Walker2d-v5|dapd dapd@authors|0 1 2;paper1m-dst|HalfCheetah-v5 Hopper-v5|rigl rlx2|0 1 2;paper1m-seeds34-dense|HalfCheetah-v5 Hopper-v5|dense|3 4;paper1m-seeds34|HalfCheetah-v5 Hopper-v5|dapd dapd@authors|3 4}"
records="${PAPER1M_RECORDS-$repo/benchmarks/records/paper1m}"
py="${PAPER1M_PYTHON:-$repo/.venv/bin/python}"
threads="${PAPER1M_THREADS:-1}"
read -r -a after <<< "${PAPER1M_AFTER:-}"
rev="$(git -C "$repo" rev-parse --short HEAD)"
src="$bench/src-$rev"
mkdir -p "$src"
[ -f "$src/pyproject.toml" ] || git -C "$repo" archive HEAD | tar -x -C "$src"
export PYTHONPATH="$src/src"
cd "$bench"
dense_stage="paper1m-dense|$envs|dense|$seeds"
dapd_stage="paper1m|$envs|dapd dapd@authors|$seeds"
# Write every sweep's grid first (what `neuropath sweep OUT --envs ...` writes), then seed each record into
# the sweep that lists its run, so that it sits in a sweep folder rather than one the sweep refuses to adopt.
"$py" - "$steps" "$sets" "$records" "$dense_stage;$dapd_stage;$tier2" <<'PY'
import shutil, sys
from pathlib import Path
from neuropath.experiments import sweep
steps, sets, records, stages = sys.argv[1:]
owner = {}
for stage in filter(None, stages.split(";")):
    out, envs, methods, seeds = stage.split("|")
    grid = sweep.Grid(envs.split(), methods.split(), [0.05], [int(s) for s in seeds.split()], int(steps),
                      sets.split()).validate()
    for spec in sweep.merge_into(Path(out), grid):
        owner.setdefault(spec.name, Path(out))
for rec in sorted(Path(records).iterdir()) if records else []:
    dest = owner[rec.name] / "runs" / rec.name if rec.name in owner else None
    if dest is not None and not dest.exists():
        dest.mkdir(parents=True)
        for f in ("metrics.csv", "config.yaml"):
            shutil.copy(rec / f, dest / f)
PY
# shellcheck disable=SC2016  # the worker's script is expanded by the worker
worker='
py=$1 bench=$2 wait_for=$3 steps=$4 sets=$5 threads=$6; shift 6
# (a zombie counts as ended: its parent may not have reaped it yet)
if [ -n "$wait_for" ]; then while ps -o stat= -p "$wait_for" 2>/dev/null | grep -q "^[^Z]"; do sleep 5; done; fi
for stage in "$@"; do
    IFS="|" read -r out envs methods seeds <<< "$stage"
    jobs=1 per_run=$threads
    case " $methods " in *" dense "*) ;; *) jobs=$threads per_run=1 ;; esac
    args=(sweep "$out" --envs $envs --methods $methods --keep 0.05 --seeds $seeds --steps "$steps" --jobs "$jobs"
          --threads "$per_run")
    for s in $sets; do args+=(--set "$s"); done
    "$py" -m neuropath.cli "${args[@]}" >> "$bench/$out.log" 2>&1 || true
done'
IFS=";" read -r -a tier2_stages <<< "$tier2"
start_worker() {    # WAIT_FOR THREADS STAGE...: a worker in the background; its pid in $!
    setsid nohup bash -c "$worker" _ "$py" "$bench" "$1" "$steps" "$sets" "${@:2}" < /dev/null > /dev/null 2>&1 &
}
w2=
if [ "$threads" -gt 1 ]; then
    start_worker "${after[0]:-}" "$threads" "$dense_stage" "$dapd_stage" "${tier2_stages[@]}"
    w1=$!
else
    start_worker "${after[0]:-}" 1 "$dense_stage" "${tier2_stages[@]}"
    w1=$!
    # A DAPD run takes about an hour of one core, a dense one 4-5: once the DAPD sweep is done, its core joins
    # the dense sweep.
    start_worker "${after[1]:-}" 1 "$dapd_stage" "$dense_stage" "${tier2_stages[@]}"
    w2=$!
fi
echo "started from $src: logs $bench/paper1m*.log"
if [ "${PAPER1M_WAIT:-0}" = 1 ]; then
    wait "$w1"
    [ -z "$w2" ] || wait "$w2"
fi
