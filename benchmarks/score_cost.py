"""What one mask update costs with each connection score, relative to one SAC update (issue #10).

A SAC agent of the paper's size (HalfCheetah: 17 → 256 → 256 → 6, twin critic) on a random batch of 256;
per score, one DAPD mask update of the actor and of the critic (score, L1-normalise, global top-k,
install) is timed against one full SAC update (critic, actor and temperature steps). Rounds are
interleaved so that a slow moment of a shared machine hits all; medians are printed.

    python benchmarks/score_cost.py                   # 5 rounds, 1 thread, SynFlow with 100 rounds
    python benchmarks/score_cost.py --rounds 9 --synflow-rounds 10
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from neuropath.algos.common import Batch, random_batch
from neuropath.algos.sac import SAC, SACConfig
from neuropath.pathways import DAPD
from neuropath.pathways.masks import unmasked
from neuropath.pathways.methods import SCORES

OBS, ACT, B = 17, 6, 256


def batch(g: torch.Generator) -> Batch:
    return random_batch(B, OBS, ACT, g)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--synflow-rounds", type=int, default=100)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    sac = SAC(OBS, ACT, SACConfig())
    opts = sac.make_optimizers()
    methods = {s: {n: DAPD(0.05, 5, score=s, synflow_rounds=args.synflow_rounds) for n in sac.networks}
               for s in SCORES}
    losses = sac.losses()
    for n, net in sac.networks.items():                      # masks in place, as in a run
        methods["snip"][n].init(net, lambda n=n: losses[n](batch(g)))
    times: dict[str, list[float]] = {"SAC update": [], **{s: [] for s in SCORES}}
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        sac.update(batch(g), opts)
        times["SAC update"].append(time.perf_counter() - t0)
        for s in SCORES:
            b = batch(g)
            t0 = time.perf_counter()
            with unmasked(sac):
                for n, net in sac.networks.items():
                    methods[s][n].update(net, lambda n=n: losses[n](b), 0)
            times[s].append(time.perf_counter() - t0)
    base = statistics.median(times["SAC update"])
    print(f"HalfCheetah-sized SAC (256×256), batch {B}, {args.rounds} rounds, {args.threads} thread(s); "
          f"SynFlow {args.synflow_rounds} rounds")
    print(f"{'':14s} {'ms':>9s}  × one SAC update")
    for k, v in times.items():
        m = statistics.median(v)
        print(f"{k:14s} {1000 * m:9.2f}  {m / base:6.2f}")


if __name__ == "__main__":
    main()
