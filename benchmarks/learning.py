"""Reduced-budget reproduction of the paper's MuJoCo claim: DAPD at 95% sparsity matches or
beats dense SAC and the sparse-training baselines (static, SET, RigL, RLx2).

Runs every (env, method, seed) as its own 1-thread ``neuropath train`` process, ``--jobs``
at a time (two 1-thread processes use 2 cores best), into ``--out`` (outside the repo).
Interrupted runs are resumed from their checkpoints, finished ones are skipped, so the
script can be re-run until everything is done. Then it writes the paper-protocol table
(score = mean of the last 10 evaluations; mean ± std over seeds), the step each DAPD run
froze at, and a PNG of the learning curves.

    python benchmarks/learning.py                       # run what is missing, then report
    python benchmarks/learning.py --report-only         # just the table and plot
    python benchmarks/learning.py --methods static set rigl rlx2   # the baselines (issue #3)
    neuropath report ~/neuropath-bench/learning         # the full report: IQM, CIs, profiles

This script predates `neuropath sweep` and keeps its folder layout so that the runs already
made stay usable; its only extras are the reduced-budget settings below.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# Reduced budget ⇒ reduced freeze rule (see benchmarks/RESULTS.md): the 1M-step thresholds
# (HalfCheetah 8000) are out of reach in 100k steps, so DAPD freezes at the first evaluation
# above these returns, or at 60% of the budget (the authors' runs froze at ~0.6M of 1M).
RLX2_RUN_LENGTH = 3_000_000
REDUCED_FREEZE_RETURN = {"HalfCheetah-v5": 3000, "Hopper-v5": 1500, "Walker2d-v5": 1500, "Ant-v5": 1500}


def run_name(env: str, method: str, seed: int) -> str:
    return f"{env}__{method}__s{seed}"


def is_finished(run_dir: Path, steps: int) -> bool:
    metrics = run_dir / "metrics.csv"
    if not metrics.is_file():
        return False
    rows = list(csv.DictReader(open(metrics)))
    return bool(rows) and int(rows[-1]["step"]) >= steps


def command(args: argparse.Namespace, env: str, method: str, seed: int) -> list[str]:
    run_dir = Path(args.out) / run_name(env, method, seed)
    base = [sys.executable, "-m", "neuropath.cli", "train"]
    if (run_dir / "checkpoints" / "latest").is_file():
        return base + ["--resume", str(run_dir), "--threads", "1", "--no-progress", "--steps", str(args.steps)]
    if run_dir.exists():          # started but never checkpointed: start again
        import shutil
        shutil.rmtree(run_dir)
    cmd = base + ["--env", env, "--pathway", method, "--seed", str(seed), "--steps", str(args.steps),
                  "--threads", "1", "--no-progress", "--run-dir", str(run_dir),
                  "--checkpoint-every", str(args.checkpoint_every)]
    if method == "dapd":
        freeze_step = int(args.freeze_fraction * args.steps)
        cmd += ["--freeze-return", str(REDUCED_FREEZE_RETURN.get(env, "none")), "--freeze-step", str(freeze_step)]
    if method == "rlx2":
        # RLx2's code defaults are for 3M-step runs: n-step after 300k updates, buffer floor
        # 200k. Scaled to this budget; its per-step knobs (ΔT, ζ0, D threshold, check
        # interval) stay as published. See docs/decisions.md.
        scale = args.steps / RLX2_RUN_LENGTH
        cmd += ["--nstep-delay", str(int(300_000 * scale)), "--buffer-min", str(int(200_000 * scale))]
    return cmd


def run_all(args: argparse.Namespace) -> None:
    todo = [(e, m, s) for s in args.seeds for e in args.envs for m in args.methods
            if not is_finished(Path(args.out) / run_name(e, m, s), args.steps)]
    print(f"{len(todo)} runs to do, {args.jobs} at a time", flush=True)
    running: list[tuple[subprocess.Popen, str]] = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    while todo or running:
        while todo and len(running) < args.jobs:
            e, m, s = todo.pop(0)
            log = open(Path(args.out) / f"{run_name(e, m, s)}.log", "a")
            running.append((subprocess.Popen(command(args, e, m, s), stdout=log, stderr=log, env=env),
                            run_name(e, m, s)))
            print(f"{time.strftime('%H:%M:%S')} started {running[-1][1]}", flush=True)
        time.sleep(5)
        for proc, name in list(running):
            if proc.poll() is not None:
                running.remove((proc, name))
                print(f"{time.strftime('%H:%M:%S')} finished {name} (exit {proc.returncode})", flush=True)


def load_curve(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    return np.array([int(r["step"]) for r in rows]), np.array([float(r["return_mean"]) for r in rows])


def freeze_at(run_dir: Path) -> int | None:
    text = freeze_step(run_dir)
    return int(text.split()[0]) if text[:1].isdigit() else None


def freeze_step(run_dir: Path) -> str:
    path = run_dir / "pathway.jsonl"
    if not path.is_file():
        return "-"
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "freeze" and event["net"] == "actor":
            reason = event.get("reason", "")
            return f"{event.get('frozen_at', event['step'])} ({'return' if 'return' in reason else 'step'})"
    return "not frozen"


def report(args: argparse.Namespace) -> str:
    out = Path(args.out)
    lines = ["| env | method | seeds | score (mean ± std over seeds) | per-seed scores | mask fixed at (trigger) |",
             "|---|---|---|---|---|---|"]
    curves: dict[tuple[str, str], list] = {}
    for env in args.envs:
        for method in args.methods:
            scores, freezes = [], []
            for seed in args.seeds:
                run_dir = out / run_name(env, method, seed)
                if not is_finished(run_dir, args.steps):
                    continue
                steps, rets = load_curve(run_dir)
                rets = rets[steps <= args.steps]
                scores.append(float(rets[-10:].mean()))
                curves.setdefault((env, method), []).append((steps[steps <= args.steps], rets,
                                                             freeze_at(run_dir)))
                freezes.append(freeze_step(run_dir) if method != "dense" else "-")
            if not scores:
                continue
            s = np.array(scores)
            lines.append(f"| {env} | {method} | {len(s)} | {s.mean():.0f} ± {s.std():.0f} | "
                         f"{', '.join(f'{x:.0f}' for x in s)} | {'; '.join(freezes)} |")
    table = "\n".join(lines)
    (out / "summary.md").write_text(table + "\n")
    _plot(curves, args, out / "learning_curves.png")
    return table


def _plot(curves: dict, args: argparse.Namespace, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = [e for e in args.envs if any(k[0] == e for k in curves)]
    if not envs:
        return
    fig, axes = plt.subplots(1, len(envs), figsize=(5.5 * len(envs), 4), squeeze=False)
    for ax, env in zip(axes[0], envs):
        for method in args.methods:
            runs = curves.get((env, method))
            if not runs:
                continue
            n = min(len(r[0]) for r in runs)
            steps = runs[0][0][:n]
            rets = np.stack([r[1][:n] for r in runs])
            mean, std = rets.mean(0), rets.std(0)
            line, = ax.plot(steps, mean, label=f"{method} ({len(runs)} seeds)")
            ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
            frozen = [r[2] for r in runs if r[2] is not None]
            if frozen:   # where each seed's pathway froze, on the mean curve
                ax.plot(frozen, np.interp(frozen, steps, mean), "v", color=line.get_color(), ms=8,
                        label=f"{method}: mask frozen")
        ax.set_title(env)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("eval return (10 episodes)")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(Path.home() / "neuropath-bench" / "learning"))
    p.add_argument("--envs", nargs="+", default=["Hopper-v5", "HalfCheetah-v5"])
    p.add_argument("--methods", nargs="+", default=["dense", "dapd"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--freeze-fraction", type=float, default=0.6)
    p.add_argument("--checkpoint-every", type=int, default=10_000)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        run_all(args)
    print(report(args))
    print(f"plot: {Path(args.out) / 'learning_curves.png'}")


if __name__ == "__main__":
    main()
