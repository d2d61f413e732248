"""Reduced-budget MT10 comparison: DAPD (a pathway per task) vs MT-SAC (dense) vs multi-head MT-SAC.

    python benchmarks/mt10.py                          # run what is missing (2 at a time), then the table
    python benchmarks/mt10.py --report-only
    python benchmarks/mt10.py --steps 50000 --seeds 0 1 2 3 4

Every run is one 1-thread ``neuropath train --benchmark MT10`` process into ``--out`` (outside the
repo); a cut run is resumed from its checkpoint, a finished one skipped. Budget and sizes are set
for a 2-core CPU (see the defaults): 150-step episodes (mtrl's), 256×256 networks (the paper's are
larger), 64 transitions per task per update. Score = mean success rate over the last 3 evaluations
(each: ``--eval-episodes`` deterministic episodes per task), mean ± std over seeds, beside the paper's
MT10 table.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from _pool import finished, resumable, run_pool

METHODS = {"dapd": ["--pathway", "dapd"], "mt-sac": ["--pathway", "dense"],
           "mt-sac-multihead": ["--pathway", "dense", "--heads", "per-task"]}
PAPER = {"dapd": "77 ± 1.3 (SAC-DAPD, 17k params/task)", "mt-sac": "49.0 ± 7.3 (MT-SAC, 340k)",
         "mt-sac-multihead": "– (paper: PCGrad 72.0 ± 2.2, Soft Modularization 73 ± 4.3, CARE 84 ± 5.1)"}
LAST = 3


def run_dir(out: Path, method: str, seed: int) -> Path:
    return out / f"MT10__{method}__s{seed}"


def command(args, method: str, seed: int) -> list[str]:
    path = run_dir(Path(args.out), method, seed)
    base = [sys.executable, "-m", "neuropath.cli", "train"]
    if resumable(path):
        return base + ["--resume", str(path), "--steps", str(args.steps), "--no-progress", "--threads", "1"]
    return base + ["--benchmark", "MT10", *METHODS[method], "--seed", str(seed), "--steps", str(args.steps),
                   "--seed-steps", str(args.seed_steps), "--episode-steps", "150", "--hidden", "256", "256",
                   "--batch-size", "64", "--score-batch", "64", "--window", "1500",
                   "--eval-every", str(args.eval_every), "--eval-episodes", str(args.eval_episodes),
                   "--checkpoint-every", str(args.eval_every), "--threads", "1", "--no-progress",
                   "--run-dir", str(path)]


def run_all(args) -> None:
    out = Path(args.out)
    todo = [(run_dir(out, m, s), m, s) for s in args.seeds for m in args.methods
            if not finished(run_dir(out, m, s), args.steps)]
    run_pool([(path, command(args, m, s)) for path, m, s in todo], args.jobs)


def _per_task_cost(path: Path) -> tuple[int, int]:
    """Actor parameters a task runs (active weights + biases) and its forward FLOPs per sample
    (1 MAC = 2 FLOPs), from the run's final masks (mean over tasks)."""
    from neuropath.experiments.inspect_multitask import parameter_counts, task_masks
    from neuropath.training import checkpoint
    state = checkpoint.load_state(checkpoint.latest(path))
    masks = task_masks(state, "actor.")
    per_task, _, _ = parameter_counts(state, "actor.", masks)
    weights = np.mean([sum(int(m[t].sum()) for m in masks.values()) for t in range(len(per_task))])
    return int(np.mean(per_task)), int(2 * weights)


def report(args) -> str:
    out = Path(args.out)
    lines = ["| method | seeds | success rate % (mean ± std over seeds) | per seed | actor params per task | "
             "actor forward FLOPs per task | paper (MT10, success %) |", "|---|---|---|---|---|---|---|"]
    for m in args.methods:
        scores = []
        for s in args.seeds:
            path = run_dir(out, m, s)
            if finished(path, args.steps):
                rows = list(csv.DictReader(open(path / "metrics.csv")))
                scores.append(100 * float(np.mean([float(r["success_mean"]) for r in rows[-LAST:]])))
        if scores:
            params, flops = _per_task_cost(run_dir(out, m, args.seeds[0]))
            lines.append(f"| {m} | {len(scores)} | {np.mean(scores):.1f} ± {np.std(scores):.1f} | "
                         f"{', '.join(f'{x:.1f}' for x in scores)} | {params:,} | {flops:,} | {PAPER[m]} |")
    return "\n".join(lines)


def plot(args, path: Path) -> None:
    """Mean success rate over the ten tasks against steps per task, mean ± std over seeds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in args.methods:
        curves = [list(csv.DictReader(open(run_dir(Path(args.out), m, s) / "metrics.csv")))
                  for s in args.seeds if finished(run_dir(Path(args.out), m, s), args.steps)]
        if not curves:
            continue
        steps = [int(r["step"]) for r in curves[0]]
        values = np.array([[100 * float(r["success_mean"]) for r in c[:len(steps)]] for c in curves])
        line, = ax.plot(steps, values.mean(0), label=f"{m} (n={len(curves)})")
        ax.fill_between(steps, values.mean(0) - values.std(0), values.mean(0) + values.std(0), alpha=0.15,
                        color=line.get_color())
    ax.set_xlabel("environment steps per task")
    ax.set_ylabel("MT10 mean success rate (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path.home() / "neuropath-bench" / "mt10"))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=20_000, help="environment steps per task")
    p.add_argument("--seed-steps", type=int, default=1500)
    p.add_argument("--eval-every", type=int, default=2000)
    p.add_argument("--eval-episodes", type=int, default=3)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--plot", help="also write the success curves to this PNG")
    args = p.parse_args()
    if not args.report_only:
        run_all(args)
    print(report(args))
    if args.plot:
        plot(args, Path(args.plot))


if __name__ == "__main__":
    main()
