"""Offline MT10: per-task NPF pathways vs one dense network (MT) vs a multi-head one (MHMT), BCQ and IQL.

    python benchmarks/offline_mt10.py                      # the paper's table: expert data, BCQ and IQL
    python benchmarks/offline_mt10.py --study robustness   # BCQ on medium-expert / medium / expert-replay
                                                           # data and at 10k / 50k / 100k transitions
    python benchmarks/offline_mt10.py --report-only [--study ...] [--plot PNG]

Datasets (made once, outside the repo, MINARI_DATASETS_PATH):
    neuropath dataset make MT10 expert --transitions 100000          (also medium, medium-expert)
    neuropath dataset make ~/neuropath-bench/mt10/MT10__mt-sac__s0 expert-replay --transitions 20000

Every run is one 1-thread ``neuropath train --benchmark MT10 --dataset KIND`` process into ``--out``; a
cut run resumes from its checkpoint, a finished one is skipped. Sizes are set for a 2-core CPU: all
networks 256×256 (BCQ's official VAE is 750×750, its actor and critic 400×300), 32 transitions per task
per BCQ update and 64 per IQL update, ``--steps`` updates. Score = mean success rate over the last 3
evaluations (each ``--eval-episodes`` deterministic 150-step episodes per task), mean ± std over seeds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _pool import finished, metric_rows, resumable, run_pool

METHODS = {"npf": ["--pathway", "npf"], "mt": ["--pathway", "dense"],
           "mhmt": ["--pathway", "dense", "--heads", "per-task"]}
ALGO_FLAGS = {"bcq": ["--bcq-hidden", "256", "256", "--vae-hidden", "256", "256", "--bcq-batch-size", "32"],
              "iql": ["--hidden", "256", "256", "--batch-size", "64"]}
PAPER = {("bcq", "npf"): "100 ± 0.0 (67k params, 29.4k FLOPs)", ("iql", "npf"): "97.3 ± 7.17 (54k, 53.6k)",
         ("bcq", "mt"): "81.5 ± 24.15 (1.34M, 589k)", ("iql", "mt"): "79.1 ± 26.81 (1.01M, 1073k)",
         ("bcq", "mhmt"): "95.9 ± 10.44 (1.38M, 629k)", ("iql", "mhmt"): "96.5 ± 7.10 (1.12M, 1128k)"}
LAST = 3


def cells(study: str) -> list[tuple[str, str, int | None]]:
    """(algo, dataset kind, transitions per task or None for all) of a study."""
    if study == "main":
        return [("bcq", "expert", None), ("iql", "expert", None)]
    return [("bcq", "expert", None), ("bcq", "medium-expert", None), ("bcq", "medium", None), ("bcq", "expert-replay", None),
            ("bcq", "expert", 10_000), ("bcq", "expert", 50_000)]


def run_dir(out: Path, algo: str, kind: str, size: int | None, method: str, seed: int) -> Path:
    return out / f"{algo}__{kind}__{size or 'all'}__{method}__s{seed}"


def command(args, algo: str, kind: str, size: int | None, method: str, seed: int) -> list[str]:
    path = run_dir(Path(args.out), algo, kind, size, method, seed)
    base = [sys.executable, "-m", "neuropath.cli", "train"]
    if resumable(path):
        return base + ["--resume", str(path), "--steps", str(args.steps), "--no-progress", "--threads", "1"]
    return base + ["--benchmark", "MT10", "--dataset", kind, "--algo", algo, *METHODS[method], *ALGO_FLAGS[algo],
                   *(["--transitions", str(size)] if size else []), "--seed", str(seed),
                   "--steps", str(args.steps), "--eval-every", str(args.eval_every),
                   "--eval-episodes", str(args.eval_episodes), "--checkpoint-every", str(args.eval_every),
                   "--threads", "1", "--no-progress", "--run-dir", str(path)]


def todo(args) -> list[tuple[Path, list[str]]]:
    out, jobs = Path(args.out), []
    for seed in args.seeds:
        for algo, kind, size in cells(args.study):
            for m in args.methods:
                path = run_dir(out, algo, kind, size, m, seed)
                if not finished(path, args.steps):
                    jobs.append((path, command(args, algo, kind, size, m, seed)))
    return jobs


def score(path: Path) -> float:
    rows = metric_rows(path)
    return 100 * float(np.mean([float(r["success_mean"]) for r in rows[-LAST:]]))


def task_scores(path: Path) -> list[float]:
    """Each task's success rate (%) over the run's last evaluations: the spread a box plot shows."""
    rows = metric_rows(path)[-LAST:]
    tasks = [c for c in rows[0] if c.startswith("success_") and c != "success_mean"]
    return [100 * float(np.mean([float(r[c]) for r in rows])) for c in tasks]


def per_task_cost(path: Path) -> tuple[int, int]:
    """Parameters a task runs in all the algorithm's trained networks (active weights + biases) and
    their forward FLOPs per sample (2 per active weight), from the run's masks (mean over tasks)."""
    from neuropath.experiments.inspect_multitask import parameter_counts, task_masks
    from neuropath.training import checkpoint
    state = checkpoint.load_state(checkpoint.latest(path))
    params, weights = 0.0, 0.0
    prefixes = {k.split(".")[0] + "." for k in state["algo"] if k.endswith(".mask")}
    for prefix in sorted(prefixes - {"critic_target.", "actor_target."}):
        masks = task_masks(state, prefix)
        per_task, _, _ = parameter_counts(state, prefix, masks)
        params += float(np.mean(per_task))
        weights += float(np.mean([sum(int(m[t].sum()) for m in masks.values()) for t in range(len(per_task))]))
    return int(params), int(2 * weights)


def results(args) -> dict[tuple[str, str, int | None, str], list[float]]:
    out = Path(args.out)
    return {(a, k, n, m): [score(run_dir(out, a, k, n, m, s)) for s in args.seeds
                           if finished(run_dir(out, a, k, n, m, s), args.steps)]
            for a, k, n in cells(args.study) for m in args.methods}


def report(args) -> str:
    out = Path(args.out)
    lines = ["| algo | data | transitions/task | method | seeds | success % (mean ± std) | per seed | "
             "params per task | forward FLOPs per task | paper (expert, success %) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (a, k, n, m), scores in results(args).items():
        if not scores:
            continue
        params, flops = per_task_cost(run_dir(out, a, k, n, m, args.seeds[0]))
        paper = PAPER[(a, m)] if args.study == "main" else ""
        lines.append(f"| {a} | {k} | {n or 'all'} | {m} | {len(scores)} | {np.mean(scores):.1f} ± {np.std(scores):.1f} "
                     f"| {', '.join(f'{x:.1f}' for x in scores)} | {params:,} | {flops:,} | {paper} |")
    return "\n".join(lines)


def plot(args, path: Path) -> None:
    """Box plots like the paper's: one panel per algorithm (main) or per data kind and size; each box
    over the per-task success rates of every finished seed (10 tasks × seeds), the dots are the seeds'
    mean success (the table's numbers)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    res = results(args)
    groups = sorted({(a, k, n) for a, k, n, _ in res}, key=lambda g: cells(args.study).index(g))
    fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups), 3.4), sharey=True, squeeze=False)
    for ax, (a, k, n) in zip(axes[0], groups):
        data = [res[(a, k, n, m)] for m in args.methods]
        per_task = [[x for s in args.seeds if finished(p := run_dir(Path(args.out), a, k, n, m, s), args.steps)
                     for x in task_scores(p)] for m in args.methods]
        ax.boxplot([d if d else [np.nan] for d in per_task], tick_labels=args.methods)
        for i, d in enumerate(data, start=1):
            ax.scatter([i] * len(d), d, s=18, marker="D", color="k", zorder=3)
        ax.set_title(f"{a.upper()} {k}" + (f" {n // 1000}k" if n else ""), fontsize=9)
    axes[0][0].set_ylabel("success rate (%): boxes per task, ◆ per seed")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path.home() / "neuropath-bench" / "offline-mt10"))
    p.add_argument("--study", choices=["main", "robustness"], default="main")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=10_000, help="gradient updates")
    p.add_argument("--eval-every", type=int, default=2000)
    p.add_argument("--eval-episodes", type=int, default=3)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--plot", help="also write box plots of the final success rates to this PNG")
    args = p.parse_args()
    if not args.report_only:
        run_pool(todo(args), args.jobs)
    print(report(args))
    if args.plot:
        plot(args, Path(args.plot))


if __name__ == "__main__":
    main()
