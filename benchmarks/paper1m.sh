#!/usr/bin/env bash
# Issue 33's 1M-step study on a 2-core machine: one core trains the dense runs, the other the DAPD runs
# (ours, then the authors' variant), seed-major, each a 1-thread process from a snapshot of HEAD, so that
# editing the checkout never changes a running study. Re-running continues both sweeps (finished runs are
# skipped, cut ones resumed from their last checkpoint); finished runs whose records are already in
# benchmarks/records/paper1m are seeded as finished so they are not trained again.
#   bash benchmarks/paper1m.sh [BENCH_DIR]      (default ~/neuropath-bench), then, as runs finish:
#   python benchmarks/run_records.py BENCH_DIR/paper1m benchmarks/records/paper1m   (and paper1m-dense)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bench="${1:-$HOME/neuropath-bench}"
rev="$(git -C "$repo" rev-parse --short HEAD)"
src="$bench/src-$rev"
mkdir -p "$src"
[ -f "$src/pyproject.toml" ] || git -C "$repo" archive HEAD | tar -x -C "$src"
py="$repo/.venv/bin/python"
common=(--envs HalfCheetah-v5 Hopper-v5 --keep 0.05 --seeds 0 1 2 --steps 1000000 --jobs 1
        --set checkpoint_every=20000)
export PYTHONPATH="$src/src"
cd "$bench"
# Write each sweep's grid first (what `neuropath sweep OUT --envs ...` writes), so that the records seeded
# below sit in a sweep folder rather than in a folder that the sweep refuses to adopt.
for sweep in paper1m-dense:dense paper1m:dapd,dapd@authors; do
    "$py" - "${sweep%%:*}" "${sweep#*:}" <<'PY'
import sys
from pathlib import Path
from neuropath.experiments import sweep
grid = sweep.Grid(["HalfCheetah-v5", "Hopper-v5"], sys.argv[2].split(","), [0.05], [0, 1, 2], 1_000_000,
                  ["checkpoint_every=20000"]).validate()
sweep.merge_into(Path(sys.argv[1]), grid)
PY
done
for rec in "$repo"/benchmarks/records/paper1m/*/; do
    name="$(basename "$rec")"
    case "$name" in *dense*) sweep=paper1m-dense ;; *) sweep=paper1m ;; esac
    dest="$bench/$sweep/runs/$name"
    [ -e "$dest" ] || { mkdir -p "$dest"; cp "$rec"/metrics.csv "$rec"/config.yaml "$dest"/; }
done
setsid nohup "$py" -m neuropath.cli sweep paper1m-dense "${common[@]}" --methods dense \
    >> "$bench/paper1m-dense.log" 2>&1 < /dev/null &
setsid nohup "$py" -m neuropath.cli sweep paper1m "${common[@]}" --methods dapd dapd@authors \
    >> "$bench/paper1m.log" 2>&1 < /dev/null &
echo "started from $src: logs $bench/paper1m.log, $bench/paper1m-dense.log"
