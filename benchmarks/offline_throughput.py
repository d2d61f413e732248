"""Offline updates/s: dense vs a fixed 95% pathway (NPF), BCQ and IQL, masked-dense and sparse kernels.

    python benchmarks/offline_throughput.py                   # HalfCheetah sizes (17 obs, 6 actions), 1 thread
    python benchmarks/offline_throughput.py --rounds 5 --updates 50

Each algorithm at its official sizes (IQL 256×256, batch 256; BCQ actor/critics 400-300, VAE 750-750,
batch 100). ``npf`` masks every trained network with a 5% mask per layer-set (random here: the cost of
a pathway does not depend on which weights it holds); ``:masked`` runs it as W ⊙ m in dense matmuls,
``:sparse`` through the SpMM/SDDMM kernels (`--sparse auto`). Interleaved rounds, medians, side by side.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from neuropath.algos.bcq import BCQ, BCQConfig
from neuropath.algos.common import Batch
from neuropath.algos.iql import IQL, IQLConfig
from neuropath.efficiency.sparse_exec import enable_sparse_execution
from neuropath.pathways.masks import copy_masks, masked_layers

OBS, ACT = 17, 6


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
    g = torch.Generator().manual_seed(1)
    return Batch(torch.randn(b, OBS, generator=g), torch.rand(b, ACT, generator=g) * 2 - 1,
                 torch.randn(b, 1, generator=g), torch.randn(b, OBS, generator=g), torch.ones(b, 1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--updates", type=int, default=30)
    p.add_argument("--keep", type=float, default=0.05)
    args = p.parse_args()
    torch.set_num_threads(1)
    for algo in ("iql", "bcq"):
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
