#!/bin/bash
# One lent-GPU session in one command: CUDA checks of every training loop, and (at the same time, on the
# other cores) Atari DQN dense vs DAPD on the paper's three games until a wall-clock deadline.
#
#   bash benchmarks/gpu_session.sh SECONDS [DEVICE]      # results under $OUT (or ./gpu-out); SECONDS=0: checks only
#
# On the lent machine (Python 3.12, its own torch) the packages it lacks travel as wheels in .whl/
# (gymnasium, ale-py, mujoco, minari, ...; see the device tool's README). Each Atari run is stopped with
# SIGINT at the deadline (it saves a checkpoint and flushes its logs); what comes back is a tarball of
# the run folders without checkpoints, and the check logs. Locally: `PY=.venv/bin/python bash benchmarks/gpu_session.sh 120 cpu`.
set -u
BUDGET=${1:-440}
DEV=${2:-cuda}
T0=$(date +%s)
OUT=${OUT:-$PWD/gpu-out}
R=/tmp/neuropath-gpu
rm -rf "$R"; mkdir -p "$R" "$OUT"
source "$(dirname "$0")/device_setup.sh"
machine_info > "$OUT/machine.txt" 2>&1

# ---- Atari: 3 games x {dense, dapd} x 2 seeds, 1 thread each, stopped at the deadline ---------------
left=$((BUDGET - ($(date +%s) - T0)))
[ "$BUDGET" -gt 0 ] && for game in Breakout Pong DemonAttack; do
  for method in dense dapd; do
    for seed in 0 1; do
      d=$R/atari/${game}__${method}__s${seed}
      timeout -s INT -k 120 $left $NP train --algo dqn --env ALE/$game-v5 --pathway $method --keep-ratio 0.05 \
        --seed $seed --steps 250000 --seed-steps 20000 --replay-size 100000 --eps-decay-steps 100000 \
        --freeze-step 100000 --eval-every 50000 --eval-episodes 3 --checkpoint-every 100000000 \
        --device $DEV --threads 1 --no-progress --run-dir $d > $R/atari-${game}-${method}-${seed}.log 2>&1 &
    done
  done
done

# ---- CUDA checks of every loop, meanwhile (cuda_checks.sh; each line of check.log says ok/FAILED) ----
R=$R NP="$NP" bash "$(dirname "$0")/cuda_checks.sh" "$DEV"
echo "elapsed $(( $(date +%s) - T0 )) s" >> "$R/check.log"
cp "$R/check.log" "$OUT/check.log"
(cd $R && tar -czf "$OUT/checks.tar.gz" --exclude=checkpoints --exclude=snapshots check-*.log sac bcq iql ppo)
[ "$BUDGET" -gt 0 ] && (cd $R && tar -czf "$OUT/atari.tar.gz" --exclude=checkpoints --exclude=replay.npy atari-*.log atari)
ls -la "$OUT"
