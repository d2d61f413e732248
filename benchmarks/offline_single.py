"""Single-task offline: NPF at 95% sparsity vs dense, BCQ and IQL, on Hopper and HalfCheetah medium and expert data.

The offline predecessor paper claims 95%-pruned networks keep their performance in most cases; this checks it.

    python benchmarks/offline_single.py --make-datasets    # from the dense SAC source runs (once)
    python benchmarks/offline_single.py                    # run what is missing, 2 at a time, then the table
    python benchmarks/offline_single.py --report-only

Datasets come from dense SAC runs with policy snapshots in ``--sources`` (``<env>/``: ``neuropath train
--env ENV --pathway dense --steps 100000 --eval-every 5000``): ``expert`` = the final policy's rollouts,
``medium`` = the snapshot closest to a third of the final return, ``--transitions`` each. Every run is one
1-thread ``neuropath train --dataset ID`` process in ``--out``, resumed if cut, skipped if finished; BCQ
and IQL run with their official settings and ``--bcq-steps`` / ``--iql-steps`` updates. Score = mean
normalised score of the last 3 evaluations (100 · (return − random) / (expert − random), the dataset's
reference returns), mean ± std over seeds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from _pool import finished, metric_rows, resumable, run_pool

ENVS = ("Hopper-v5", "HalfCheetah-v5")
KINDS = ("medium", "expert")
ALGOS = ("bcq", "iql")
METHODS = ("npf", "dense", "npf-member", "npf-bc")
PATHWAY_FLAGS = {"npf": ["--pathway", "npf"], "dense": ["--pathway", "dense"],
                 "npf-member": ["--pathway", "npf", "--scope", "member"],
                 "npf-bc": ["--pathway", "npf", "--npf-actor-loss", "bc"]}
# npf-member: top-k per member network; npf-bc: IQL's actor scored without advantage weights (docs/decisions.md)
LAST = 3


def dataset(env: str, kind: str) -> str:
    """The benchmark's own ids (not the defaults, so that other datasets of the same kind can coexist)."""
    return f"neuropath/{env.split('-')[0].lower()}/{kind}-bench-v0"


def run_dir(out: Path, env: str, kind: str, algo: str, method: str, seed: int) -> Path:
    return out / f"{env}__{kind}__{algo}__{method}__s{seed}"


def steps(args, algo: str) -> int:
    return args.bcq_steps if algo == "bcq" else args.iql_steps


def command(args, env: str, kind: str, algo: str, method: str, seed: int) -> list[str]:
    path = run_dir(Path(args.out), env, kind, algo, method, seed)
    base = [sys.executable, "-m", "neuropath.cli", "train"]
    if resumable(path):
        return base + ["--resume", str(path), "--steps", str(steps(args, algo)), "--no-progress", "--threads", "1"]
    return base + ["--dataset", dataset(env, kind), "--algo", algo, *PATHWAY_FLAGS[method], "--seed", str(seed),
                   "--steps", str(steps(args, algo)), "--eval-every", str(args.eval_every),
                   "--eval-episodes", str(args.eval_episodes), "--checkpoint-every", str(args.eval_every),
                   "--threads", "1", "--no-progress", "--run-dir", str(path)]


def make_datasets(args) -> None:
    import minari
    for env in args.envs:
        for kind in args.kinds:
            if dataset(env, kind) not in minari.list_local_datasets():
                subprocess.run([sys.executable, "-m", "neuropath.cli", "dataset", "make", str(Path(args.sources) / env),
                                kind, "--transitions", str(args.transitions), "--id", dataset(env, kind)], check=True)


def cells(args):
    return [(e, k, a, m) for e in args.envs for k in args.kinds for a in args.algos for m in args.methods
            if not (m == "npf-bc" and a != "iql")]           # BCQ's perturbation actor has no likelihood


def report(args) -> str:
    out = Path(args.out)
    lines = ["| env | data | algo | method | seeds | normalised score (mean ± std) | per seed |", "|---|---|---|---|---|---|---|"]
    for e, k, a, m in cells(args):
        scores = []
        for s in args.seeds:
            path = run_dir(out, e, k, a, m, s)
            if finished(path, steps(args, a)):
                scores.append(float(np.mean([float(r["normalized_score"]) for r in metric_rows(path)[-LAST:]])))
        if scores:
            lines.append(f"| {e} | {k} | {a} | {m} | {len(scores)} | {np.mean(scores):.1f} ± {np.std(scores):.1f} | "
                         f"{', '.join(f'{x:.1f}' for x in scores)} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path.home() / "neuropath-bench" / "offline-single"))
    p.add_argument("--sources", default=str(Path.home() / "neuropath-bench" / "sources"))
    p.add_argument("--envs", nargs="+", default=list(ENVS))
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    p.add_argument("--algos", nargs="+", default=list(ALGOS), choices=list(ALGOS))
    p.add_argument("--methods", nargs="+", default=["npf", "dense"], choices=list(METHODS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--transitions", type=int, default=100_000)
    p.add_argument("--bcq-steps", type=int, default=50_000)
    p.add_argument("--iql-steps", type=int, default=100_000)
    p.add_argument("--eval-every", type=int, default=5000)
    p.add_argument("--eval-episodes", type=int, default=5)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--make-datasets", action="store_true")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args()
    if args.make_datasets:
        make_datasets(args)
        return
    if not args.report_only:
        out = Path(args.out)
        todo = [(run_dir(out, e, k, a, m, s), command(args, e, k, a, m, s)) for s in args.seeds
                for e, k, a, m in cells(args) if not finished(run_dir(out, e, k, a, m, s), steps(args, a))]
        run_pool(todo, args.jobs)
    print(report(args))


if __name__ == "__main__":
    main()
