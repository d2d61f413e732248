"""What a real run costs: dense SAC and a DAPD pathway trained side by side as two 1-thread processes, the way
the studies run them (`neuropath sweep --jobs 2`), CPU seconds per environment step and their ratio.

    python benchmarks/run_cost.py                     # HalfCheetah-v5, 20k steps, default evaluation
    python benchmarks/run_cost.py --steps 50000 --env Hopper-v5

Unlike `sparse_update.py` (one update, in one process) this counts everything a run does: acting,
environment steps, evaluation (10 episodes every 5000 steps), DAPD's mask updates in warm-up, logging and
checkpoints. The CPU time is each run's own (`cpu_seconds` of its last metrics row: process time, so the
other process sharing the machine does not count against it); ``--skip`` steps at the start (the random seed
steps, numba's first compilations) are left out of the per-step figure. Extra ``neuropath train`` flags
after ``--`` go to both runs (the test suite's smoke run passes tiny networks).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("cpu_seconds")]


def cost_per_step(run_dir: Path, skip: int) -> tuple[float, int]:
    """CPU seconds per step between the first evaluation row at or after ``skip`` and the last row."""
    rows = _rows(run_dir)
    start = next((r for r in rows if int(r["step"]) >= skip), rows[0])
    end = rows[-1]
    steps = int(end["step"]) - int(start["step"])
    if steps <= 0:                                   # one row only: the whole run
        return float(end["cpu_seconds"]) / max(int(end["step"]), 1), int(end["step"])
    return (float(end["cpu_seconds"]) - float(start["cpu_seconds"])) / steps, steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--env", default="HalfCheetah-v5")
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--skip", type=int, default=5000, help="steps left out at the start (default: 5000)")
    ap.add_argument("--keep", type=float, default=0.05, help="keep ratio of the DAPD run (default: 0.05)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", nargs=2, default=["dense", "dapd"], metavar=("BASE", "PATHWAY"),
                    help="the two --pathway values compared (default: dense dapd)")
    ap.add_argument("--out", type=Path, default=None, help="where the two runs go (default: a temporary folder)")
    ap.add_argument("extra", nargs=argparse.REMAINDER, help="-- then flags for both `neuropath train` runs")
    args = ap.parse_args()
    extra = [a for a in args.extra if a != "--"]

    out = args.out or Path(tempfile.mkdtemp(prefix="run_cost-"))
    procs, dirs = {}, {}
    started = time.time()
    for method in args.methods:
        dirs[method] = out / method
        keep = [] if method == "dense" else ["--keep-ratio", str(args.keep)]
        cmd = [sys.executable, "-m", "neuropath.cli", "train", "--env", args.env, "--pathway", method, *keep,
               "--steps", str(args.steps), "--seed", str(args.seed), "--threads", "1", "--no-progress",
               "--run-dir", str(dirs[method]), *extra]
        procs[method] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for method, proc in procs.items():
        _, err = proc.communicate()
        if proc.returncode != 0:
            sys.exit(f"run_cost: the {method} run failed (exit {proc.returncode}): {err.strip().splitlines()[-1:]}")
    wall = time.time() - started

    print(f"{args.env}, {args.steps} steps, seed {args.seed}, two 1-thread runs side by side ({wall:.0f} s wall);"
          f" CPU seconds per step over the steps after {args.skip}")
    cost = {}
    for method in args.methods:
        per_step, steps = cost_per_step(dirs[method], args.skip)
        cost[method] = per_step
        last = _rows(dirs[method])[-1]
        print(f"  {method:8s} {per_step * 1e3:7.2f} ms/step over {steps} steps   (whole run"
              f" {float(last['cpu_seconds']):.0f} CPU s, last return {float(last['return_mean']):.1f})")
    base, path = args.methods
    print(f"  {base} / {path}: {cost[base] / cost[path]:.2f}x   (a 1M-step {path} run: "
          f"~{cost[path] * 1e6 / 3600:.2f} h of one core, {base}: ~{cost[base] * 1e6 / 3600:.2f} h)")


if __name__ == "__main__":
    main()
