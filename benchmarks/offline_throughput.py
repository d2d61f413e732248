"""Offline updates/s: dense vs a fixed 95% pathway (NPF), BCQ and IQL, masked-dense and sparse kernels.

    python benchmarks/offline_throughput.py                   # HalfCheetah sizes (17 obs, 6 actions), 1 thread
    python benchmarks/offline_throughput.py --rounds 5 --updates 50
    python benchmarks/offline_throughput.py --tasks 10        # MT10 as benchmarks/offline_mt10.py runs it

Each algorithm at its official sizes (IQL 256×256, batch 256; BCQ actor/critics 400-300, VAE 750-750,
batch 100). ``npf`` masks every trained network with a 5% mask per layer-set (random here: the cost of
a pathway does not depend on which weights it holds); ``:masked`` runs it as W ⊙ m in dense matmuls,
``:sparse`` through the SpMM/SDDMM kernels (`--sparse auto`). Interleaved rounds, medians, side by side.

``--tasks T``: one multi-task network of `TaskLinear` layers as offline MT10 trains it (39 obs + a T-wide
one-hot, 4 actions, every network 256×256, 32 transitions per task per BCQ update and 64 per IQL update):
``dense`` = MT (one shared weight), ``npf`` = a 5% pathway per task over the shared weight (merged).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from neuropath.algos.bcq import BCQ, BCQConfig
from neuropath.algos.common import Batch, random_batch
from neuropath.algos.iql import IQL, IQLConfig
from neuropath.engine.sparse_exec import enable_sparse_execution
from neuropath.pathways.masks import copy_masks, masked_layers

OBS, ACT = 17, 6


def build_tasks(algo: str, variant: str, keep: float, tasks: int, seed: int = 0):
    """An MT10-shaped agent: per-task random pathways (``npf``) or none (``dense``), then merged."""
    from neuropath.pathways.multitask import merge_task_weights, task_layers
    torch.manual_seed(seed)
    obs = 39 + tasks
    agent = (IQL(obs, 4, IQLConfig(hidden=[256, 256]), 10_000, tasks=tasks) if algo == "iql"
             else BCQ(obs, 4, BCQConfig(hidden=[256, 256], vae_hidden=[256, 256]), tasks=tasks))
    for net in agent.networks.values():
        if variant != "dense":
            for layer in task_layers(net).values():
                for t in range(tasks):
                    layer.set_mask(torch.rand(layer.weight.shape[1:]) < keep, t)
        merge_task_weights(net)
    for name, targets in agent.tied.items():
        for target in targets:
            target.load_state_dict(agent.networks[name].state_dict())
    if variant == "npf:sparse":
        enable_sparse_execution(*agent.networks.values(), *(t for ts in agent.tied.values() for t in ts))
    opts = agent.make_optimizers()
    return agent, opts, agent.make_schedulers(opts)


def task_batch(tasks: int, b: int) -> Batch:
    return random_batch(b, 39 + tasks, 4, torch.Generator().manual_seed(1), (tasks,))


def build(algo: str, variant: str, keep: float, seed: int = 0):
    torch.manual_seed(seed)
    agent = IQL(OBS, ACT, IQLConfig(), 10_000) if algo == "iql" else BCQ(OBS, ACT, BCQConfig())
    if variant != "dense":
        for net in agent.networks.values():
            for layer in masked_layers(net).values():
                layer.set_mask(torch.rand_like(layer.weight) < keep)
        for name, targets in agent.tied.items():
            for t in targets:
                copy_masks(agent.networks[name], t)
        if variant == "npf:sparse":
            enable_sparse_execution(*agent.networks.values(), *(t for ts in agent.tied.values() for t in ts))
    opts = agent.make_optimizers()
    return agent, opts, agent.make_schedulers(opts)


def batch(b: int) -> Batch:
    return random_batch(b, OBS, ACT, torch.Generator().manual_seed(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--updates", type=int, default=30)
    p.add_argument("--keep", type=float, default=0.05)
    p.add_argument("--tasks", type=int, default=0, help="a multi-task network of this many tasks (MT10: 10)")
    args = p.parse_args()
    torch.set_num_threads(1)
    for algo in ("iql", "bcq"):
        if args.tasks:
            variants = {v: build_tasks(algo, v, args.keep, args.tasks) for v in ("dense", "npf:masked", "npf:sparse")}
            b = task_batch(args.tasks, 64 if algo == "iql" else 32)
        else:
            variants = {v: build(algo, v, args.keep) for v in ("dense", "npf:masked", "npf:sparse")}
            b = batch(256 if algo == "iql" else 100)
        times = {v: [] for v in variants}
        for _ in range(args.rounds):
            for v, (agent, opts, sched) in variants.items():
                for _ in range(3):
                    agent.update(b, opts, sched)
                t0 = time.perf_counter()
                for _ in range(args.updates):
                    agent.update(b, opts, sched)
                times[v].append(args.updates / (time.perf_counter() - t0))
        med = {v: statistics.median(x) for v, x in times.items()}
        print(f"{algo}: updates/s, 1 thread, median of {args.rounds} rounds × {args.updates} (all rounds)")
        for v in variants:
            print(f"  {v:11s} {med[v]:7.1f}  ({med[v] / med['dense']:.2f}x dense)   "
                  f"[{', '.join(f'{x:.1f}' for x in times[v])}]")


if __name__ == "__main__":
    main()
