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
# CHECKS=0 skips the checks. Back here: `for f in OUT/runs-*.tar.xz; do tar -xJf $f -C SWEEP; done`, then `neuropath sweep SWEEP`.
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
SWEEP_PID=$!
echo "sweep runs on: $RUN_DEVICE" >> "$R/machine.txt"

# ---- the CUDA checks on the GPU, meanwhile ----
mkdir -p "$R/checks"
[ "${CHECKS:-1}" = 1 ] && R=$R/checks NP="$NP" timeout -k 10 $(( BUDGET - 40 )) bash "$(dirname "$0")/cuda_checks.sh" "$DEV"
echo "checks done at $(( $(date +%s) - T0 )) s" >> "$R/checks/check.log"

while kill -0 $SWEEP_PID 2>/dev/null && [ $(( $(date +%s) - T0 )) -lt "$BUDGET" ]; do sleep 5; done
kill -TERM $SWEEP_PID 2>/dev/null
for _ in $(seq 60); do kill -0 $SWEEP_PID 2>/dev/null || break; sleep 2; done
echo "sweep stopped at $(( $(date +%s) - T0 )) s" >> "$R/checks/check.log"

# ---- pack: latest checkpoint of each run, runs spread over at most 6 tarballs ----
cd "$R/sweep"
for run in runs/*/; do
  latest=$(cat "$run/checkpoints/latest" 2>/dev/null) || continue
  for c in "$run"/checkpoints/ckpt-*; do [ "$(basename "$c")" = "$latest" ] || rm -rf "$c"; done
  echo "$(basename "$run") stopped, checkpoint $latest" >> "$R/checks/check.log"
done
packs=()
mapfile -t runs < <(ls runs)
n=${#runs[@]}; files=$(( n < 6 ? n : 6 ))
for ((k = 0; k < files; k++)); do
  part=(); for ((i = k; i < n; i += files)); do part+=("runs/${runs[i]}" "logs/${runs[i]}.log"); done
  tar -cf - --exclude=.lock "${part[@]}" | xz -1 -T2 > "$OUT/runs-$k.tar.xz" &
  packs+=($!)
done
wait "${packs[@]}"
cp "$R/sweep.log" "$R/machine.txt" "$R/checks/"
cd "$R/checks" && tar -czf "$OUT/checks.tar.gz" --exclude=checkpoints --exclude=replay.npy --exclude='*.hdf5' .
cp "$R/checks/check.log" "$OUT/check.log"
echo "elapsed $(( $(date +%s) - T0 )) s"; ls -la "$OUT"; cat "$R/checks/machine.txt" "$OUT/check.log"
