#!/bin/bash
# One lent GPU machine, one command: the CUDA checks (cuda_checks.sh) on the GPU while a sweep's runs
# train on the other CPU cores until a deadline. Each run is then stopped (it checkpoints), only its
# latest checkpoint is kept, and the runs travel back as at most 6 xz tarballs (the device tool returns
# 8 files of <= 16 MiB: those, checks.tar.gz and check.log); unpacked into the sweep folder here, `neuropath sweep` resumes them.
#
#   bash benchmarks/device_session.sh SECONDS SWEEP_DIR JOBS [DEVICE]
#
# SWEEP_DIR needs only its sweep.yaml (list there just the runs the lent machine should take). On the
# lent machine (Python 3.12, its own torch) missing packages travel as wheels in .whl/ (device README):
# gymnasium==1.4.0 farama-notifications==0.0.6 minatar==1.0.15 mujoco==3.3.0 glfw==2.11.0 pyopengl==3.1.10
# metaworld==3.1.1 minari==0.5.4 (2026-11-27: minari was missing, so the offline checks failed to import it).
# RUN_DEVICE=cpu (default) trains the sweep's runs on the CPU cores (the GPU is hidden from them: their
# config's device "auto" would otherwise pick CUDA, as it did on 2026-11-27, when the MinAtar runs sent
# "to the cores" in fact shared the GPU with the checks); RUN_DEVICE=cuda puts them on the GPU.
# CUDA_SWEEP=DIR CUDA_JOBS=N: a second folder of the same sweep (its sweep.yaml naming other runs) whose runs
# train on the GPU meanwhile, N at a time, each with one CPU core for its Python (JOBS + N <= cores).
# CHECKS=0 skips the checks. What comes back: one xz tarball per run, bundled into at most 6 files
# (runs-K.tar) of <= 15 MiB and <= 60 MiB together: finished runs first and without their checkpoints
# (their metrics are the result), then unfinished ones by progress, each with its latest checkpoint (the
# replay buffer dominates: ~8-13 MB per 75k SAC steps); a run that does not fit is named in check.log as
# left behind. Back here: `for f in OUT/runs-*.tar; do tar -xf $f -C /tmp/p; done; for r in /tmp/p/*.tar.xz;
# do tar -xJf $r -C SWEEP; done`, then `neuropath sweep SWEEP` finishes the unfinished ones.
set -u
BUDGET=${1:?seconds}; SWEEP=${2:?sweep folder}; JOBS=${3:?parallel runs}; DEV=${4:-cuda}
RUN_DEVICE=${RUN_DEVICE:-cpu}
case $RUN_DEVICE in cpu|cuda) ;; *) echo "RUN_DEVICE must be cpu or cuda, got $RUN_DEVICE" >&2; exit 2 ;; esac
T0=$(date +%s)
OUT=${OUT:-$PWD/device-out}
R=/tmp/neuropath-device
rm -rf "$R"; mkdir -p "$R" "$OUT"
source "$(dirname "$0")/device_setup.sh"
machine_info > "$R/machine.txt" 2>&1

# ---- the sweep on the CPU cores (or the GPU: RUN_DEVICE), stopped at the deadline (SIGTERM to the
# sweep: it stops its runs, which checkpoint; SIGINT would not do: a background job of a script ignores it) ----
mkdir -p "$R/sweep"; cp "$SWEEP/sweep.yaml" "$R/sweep/"
HIDE_GPU=(); [ "$RUN_DEVICE" = cpu ] && HIDE_GPU=(CUDA_VISIBLE_DEVICES=)
env "${HIDE_GPU[@]}" $NP sweep "$R/sweep" --jobs "$JOBS" > "$R/sweep.log" 2>&1 &
SWEEP_PIDS=($!)
echo "sweep runs on: $RUN_DEVICE" >> "$R/machine.txt"
SWEEPS=("$R/sweep")
if [ -n "${CUDA_SWEEP:-}" ]; then
  mkdir -p "$R/sweep-cuda"; cp "$CUDA_SWEEP/sweep.yaml" "$R/sweep-cuda/"
  $NP sweep "$R/sweep-cuda" --jobs "${CUDA_JOBS:-1}" > "$R/sweep-cuda.log" 2>&1 &
  SWEEP_PIDS+=($!); SWEEPS+=("$R/sweep-cuda")
  echo "and ${CUDA_JOBS:-1} at a time on the GPU: $CUDA_SWEEP" >> "$R/machine.txt"
fi

# ---- the CUDA checks on the GPU, meanwhile ----
mkdir -p "$R/checks"
[ "${CHECKS:-1}" = 1 ] && R=$R/checks NP="$NP" timeout -k 10 $(( BUDGET - 40 )) bash "$(dirname "$0")/cuda_checks.sh" "$DEV"
echo "checks done at $(( $(date +%s) - T0 )) s" >> "$R/checks/check.log"

running() { for p in "${SWEEP_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
while running && [ $(( $(date +%s) - T0 )) -lt "$BUDGET" ]; do sleep 5; done
kill -TERM "${SWEEP_PIDS[@]}" 2>/dev/null
for _ in $(seq 60); do running || break; sleep 2; done
echo "sweeps stopped at $(( $(date +%s) - T0 )) s" >> "$R/checks/check.log"

# ---- pack: one xz tarball per run (finished: no checkpoints; else the latest only), priority-named ----
mkdir -p "$R/packs"
for sw in "${SWEEPS[@]}"; do
  $NP sweep "$sw" --dry-run > "$sw/state.txt" 2>&1
  while read -r state name; do
    run=$sw/runs/$name; [ -d "$run" ] || continue
    if [ "$state" = finished ]; then rm -rf "$run/checkpoints"; key=0000000; latest=none
    else
      latest=$(cat "$run/checkpoints/latest" 2>/dev/null) || { echo "$name: no checkpoint, left behind" >> "$R/checks/check.log"; continue; }
      for c in "$run"/checkpoints/ckpt-*; do [ "$(basename "$c")" = "$latest" ] || rm -rf "$c"; done
      key=$(printf %07d $(( 9999999 - 10#$(echo "$latest" | tr -cd 0-9) )))
    fi
    echo "$name $state, checkpoint $latest" >> "$R/checks/check.log"
    (cd "$sw" && tar -cf - --exclude=.lock "runs/$name" "logs/$name.log" | xz -1 > "$R/packs/$key-$name.tar.xz") &
  done < "$sw/state.txt"
done
wait
# bundle: smallest key first (finished, then furthest), <= 15 MiB a file, <= 60 MiB in all, 6 files
MIB=$((1024 * 1024)); total=0; k=0; size=0
for f in $(ls "$R/packs" | sort); do
  b=$(stat -c %s "$R/packs/$f")
  if [ $(( total + b )) -gt $(( 60 * MIB )) ] || [ "$b" -gt $(( 15 * MIB )) ]; then echo "left behind (no room): $f" >> "$R/checks/check.log"; continue; fi
  if [ $(( size + b )) -gt $(( 15 * MIB )) ]; then k=$(( k + 1 )); size=0; fi
  [ "$k" -ge 6 ] && { echo "left behind (no file): $f" >> "$R/checks/check.log"; continue; }
  tar -rf "$OUT/runs-$k.tar" -C "$R/packs" "$f"; size=$(( size + b )); total=$(( total + b ))
done
[ -f "$R/sweep-cuda.log" ] && cp "$R/sweep-cuda.log" "$R/checks/"
cp "$R/sweep.log" "$R/machine.txt" "$R/checks/"
cd "$R/checks" && tar -czf "$OUT/checks.tar.gz" --exclude=checkpoints --exclude=replay.npy --exclude='*.hdf5' .
cp "$R/checks/check.log" "$OUT/check.log"
echo "elapsed $(( $(date +%s) - T0 )) s"; ls -la "$OUT"; cat "$R/checks/machine.txt" "$OUT/check.log"
