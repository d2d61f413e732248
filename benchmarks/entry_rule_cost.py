"""What the own-age entry rule costs: SAC updates with `--entry-rule global` vs `own-age`, side by side.

    python benchmarks/entry_rule_cost.py                     # HalfCheetah sizes, 256×256, 95%, after 5 swaps
    python benchmarks/entry_rule_cost.py --sparse            # on the sparse kernels, as a run on the CPU does

Both agents get the same DAPD pathways and the same 5 mask swaps after 20 updates (so that young entries,
the ones the rule corrects, exist: ~2 swaps' worth is what a warm-up run holds), then interleaved rounds of
updates on one batch; medians, ms per update, and the number of young entries corrected.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from neuropath.algos.common import random_batch
from neuropath.algos.sac import SAC, SACConfig
from neuropath.engine.sparse_exec import enable_sparse_execution
from neuropath.pathways import DAPD, Pathway, WarmupFreeze

OBS, ACT = 17, 6


def make(rule: str, hidden: list[int], keep: float, swaps: int, sparse: bool):
    torch.manual_seed(0)
    algo = SAC(OBS, ACT, SACConfig(hidden=hidden))
    opts = algo.make_optimizers()
    pws = {n: Pathway(net, DAPD(keep), WarmupFreeze(), opts[n], entry_rule=rule, tied=algo.tied.get(n, ()))
           for n, net in algo.networks.items()}
    g = torch.Generator().manual_seed(0)
    losses = algo.losses()
    for n, pw in pws.items():
        pw.init(lambda n=n: losses[n](random_batch(256, OBS, ACT, g)))
    if sparse:
        enable_sparse_execution(algo.actor, algo.critic, algo.critic_target)
    for _ in range(20):
        algo.update(random_batch(256, OBS, ACT, g), opts)
    for k in range(swaps):
        for n, pw in pws.items():
            pw.update(20 + k, lambda n=n: losses[n](random_batch(256, OBS, ACT, g)))
    young = sum(pw.entry_ages.young() for pw in pws.values() if pw.entry_ages is not None)
    return algo, opts, young


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--keep", type=float, default=0.05)
    p.add_argument("--swaps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--updates", type=int, default=50)
    p.add_argument("--sparse", action="store_true", help="run the networks on the sparse kernels")
    args = p.parse_args()
    torch.set_num_threads(1)
    agents = {rule: make(rule, args.hidden, args.keep, args.swaps, args.sparse) for rule in ("global", "own-age")}
    b = random_batch(256, OBS, ACT, torch.Generator().manual_seed(1))
    times: dict[str, list[float]] = {rule: [] for rule in agents}
    for _ in range(args.rounds):
        for rule, (algo, opts, _) in agents.items():
            algo.update(b, opts)
            t = time.perf_counter()
            for _ in range(args.updates):
                algo.update(b, opts)
            times[rule].append((time.perf_counter() - t) / args.updates * 1e3)
    med = {rule: statistics.median(v) for rule, v in times.items()}
    print(f"1 thread, {'sparse kernels' if args.sparse else 'masked dense'}, {args.rounds} rounds × {args.updates} "
          "updates, ms/update (median; all rounds)")
    for rule, (_, _, young) in agents.items():
        print(f"  {rule:8s} {med[rule]:7.2f}   ({', '.join(f'{x:.2f}' for x in times[rule])})   young entries: {young}")
    print(f"  own-age / global: {med['own-age'] / med['global']:.3f}")


if __name__ == "__main__":
    main()
