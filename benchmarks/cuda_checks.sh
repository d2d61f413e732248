#!/bin/bash
# CUDA checks of every training loop: each a real short run with --device cuda (resume, eval and the
# tools on its run folder too); one line per check in $R/check.log: ok, or FAILED with the log's tail.
#
#   R=/tmp/checks NP="python3 -m neuropath.cli" bash benchmarks/cuda_checks.sh [DEVICE]
#
# Three lanes run side by side (a few minutes on a lent GPU machine). Sourced by gpu_session.sh and
# device_session.sh; locally `NP=".venv/bin/python -m neuropath.cli" bash benchmarks/cuda_checks.sh cpu`
# runs the same list on the CPU. ONLY=REGEX runs the checks whose names match (name their prerequisites too).
set -u
DEV=${1:-cuda}
R=${R:?set R to a scratch folder}
NP=${NP:?set NP to the neuropath command}
mkdir -p "$R"; : > "$R/check.log"
export MINARI_DATASETS_PATH=$R/minari

check() {  # name, command...
  local name=$1; shift
  [[ "$name" =~ ${ONLY:-.} ]] || return 0        # ONLY=REGEX: just the checks it names (and what they need)
  if timeout 240 "$@" > "$R/check-$name.log" 2>&1; then echo "ok     $name" >> "$R/check.log"
  else echo "FAILED $name (exit $?)" >> "$R/check.log"; tail -5 "$R/check-$name.log" | sed 's/^/    /' >> "$R/check.log"; fi
}
common="--device $DEV --threads 1 --no-progress"
sac="--env Hopper-v5 --steps 2000 --seed-steps 500 --init-steps 500 --eval-every 1000 --eval-episodes 2 --checkpoint-every 1000"

(   # SAC: DAPD, resume, eval, offline datasets, BCQ/IQL single-shot pathways
  check sac-dapd $NP train --env Hopper-v5 --pathway dapd --steps 3000 --seed-steps 1000 --init-steps 1000 \
    --eval-every 1500 --eval-episodes 2 --checkpoint-every 1500 $common --run-dir $R/sac
  check sac-resume $NP train --resume $R/sac --steps 4000 --device $DEV --no-progress
  check sac-eval $NP eval $R/sac --episodes 2
  check sac-overlap $NP overlap $R/sac
  check dataset $NP dataset make $R/sac expert --transitions 3000 --id neuropath/hopper/gpucheck-v0
  check bcq-npf $NP train --dataset neuropath/hopper/gpucheck-v0 --algo bcq --pathway npf --steps 400 --eval-every 200 \
    --eval-episodes 2 $common --run-dir $R/bcq
  check iql-npf $NP train --dataset neuropath/hopper/gpucheck-v0 --algo iql --pathway npf --steps 400 --eval-every 200 \
    --eval-episodes 2 $common --run-dir $R/iql
  check iql-resume $NP train --resume $R/iql --steps 600 --device $DEV --no-progress
  # the scores of issue 10 (GraSP's Hessian-vector product, SynFlow's float64 rounds) on the device
  for score in grasp synflow grad magnitude random; do
    check sac-dapd-$score $NP train $sac --pathway dapd --score $score --synflow-rounds 10 $common --run-dir $R/sac-$score
  done
  check sac-static-synflow $NP train $sac --pathway static --score synflow --synflow-rounds 10 $common --run-dir $R/static-synflow
) &
(   # PPO; multi-task (MT10, two tasks); the DST baselines and their resume
  check ppo-dapd $NP train --algo ppo --env Hopper-v5 --pathway dapd --steps 8192 --eval-every 4096 \
    --eval-episodes 2 $common --run-dir $R/ppo
  check ppo-resume $NP train --resume $R/ppo --steps 10240 --device $DEV --no-progress
  check ppo-eval $NP eval $R/ppo --episodes 2
  check ppo-flops $NP flops $R/ppo
  check mt-dapd $NP train --benchmark MT10 --tasks reach-v3,push-v3 --pathway dapd --steps 1500 --seed-steps 500 \
    --init-steps 500 --episode-steps 150 --eval-every 750 --eval-episodes 1 --checkpoint-every 750 $common --run-dir $R/mt
  check mt-resume $NP train --resume $R/mt --steps 1800 --device $DEV --no-progress
  check mt-inspect $NP inspect $R/mt
  for m in rigl set rlx2; do
    check sac-$m $NP train $sac --pathway $m $common --run-dir $R/sac-$m
  done
  check sac-rigl-resume $NP train --resume $R/sac-rigl --steps 2500 --device $DEV --no-progress
) &
(   # DQN on MinAtar with masked convolutions: mask updates, freeze, resume, eval, flops, inspect
  check dqn-dapd $NP train --algo dqn --env MinAtar/Breakout-v1 --pathway dapd --mask-conv --steps 4000 \
    --seed-steps 500 --freeze-step 3000 --eval-every 2000 --eval-episodes 2 --checkpoint-every 2000 $common --run-dir $R/dqn
  check dqn-resume $NP train --resume $R/dqn --steps 5000 --device $DEV --no-progress
  check dqn-eval $NP eval $R/dqn --episodes 2
  check dqn-flops $NP flops $R/dqn
  check dqn-inspect $NP inspect $R/dqn
  check dqn-static $NP train --algo dqn --env MinAtar/Asterix-v1 --pathway static --steps 2000 --seed-steps 500 \
    --eval-every 1000 --eval-episodes 2 $common --run-dir $R/dqn-static
) &
wait
