"""Per-task forward + backward batched over tasks (one bmm per layer) vs a Python loop over tasks.

    python benchmarks/multitask_batching.py                       # MT10 sizes: 10 tasks, 49 → 400×3 → 8
    python benchmarks/multitask_batching.py --hidden 256 256 --batch 128

The loop is what a per-task implementation without batching does: ten separate MLPs (the warm-up's
per-task weight copies), each run on its own task's batch. Both compute the same sums; the batched
one is `neuropath.pathways.TaskLinear`. Interleaved rounds, medians, 1 thread.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from neuropath.pathways.multitask import task_mlp


def loop_mlps(in_dim: int, hidden: list[int], out_dim: int, tasks: int) -> list[nn.Sequential]:
    def one() -> nn.Sequential:
        dims = [in_dim, *hidden, out_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)
    return [one() for _ in range(tasks)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=10)
    p.add_argument("--obs", type=int, default=49)
    p.add_argument("--out", type=int, default=8)
    p.add_argument("--hidden", type=int, nargs="+", default=[400, 400, 400])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 128])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--reps", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(1)
    batched = task_mlp(args.obs, args.hidden, args.out, args.tasks)
    for layer in batched:
        if hasattr(layer, "set_mask"):
            for t in range(args.tasks):
                layer.set_mask(torch.rand(layer.out_features, layer.in_features) < 0.05, t)
    looped = loop_mlps(args.obs, args.hidden, args.out, args.tasks)
    masks = [[torch.rand_like(m.weight) < 0.05 for m in net if isinstance(m, nn.Linear)] for net in looped]
    print(f"{args.tasks} tasks, {args.obs} → {args.hidden} → {args.out}, masked 5% per task, 1 thread; "
          f"ms per forward+backward over all tasks (median of {args.rounds} rounds × {args.reps})")
    for b in args.batch:
        x = torch.randn(args.tasks, b, args.obs)

        def run_batched() -> None:
            batched.zero_grad(set_to_none=True)
            batched(x).square().sum().backward()

        def run_loop() -> None:
            total = 0.0
            for t, net in enumerate(looped):
                net.zero_grad(set_to_none=True)
                h = x[t]
                linear = 0
                for m in net:
                    if isinstance(m, nn.Linear):
                        h = nn.functional.linear(h, m.weight * masks[t][linear], m.bias)
                        linear += 1
                    else:
                        h = m(h)
                total = total + h.square().sum()
            total.backward()

        times = {"batched": [], "loop": []}
        for _ in range(args.rounds):
            for name, fn in (("batched", run_batched), ("loop", run_loop)):
                fn()
                t0 = time.perf_counter()
                for _ in range(args.reps):
                    fn()
                times[name].append((time.perf_counter() - t0) / args.reps * 1e3)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"  batch {b:4d} per task: batched {med['batched']:7.2f} ms, loop {med['loop']:7.2f} ms, "
              f"speedup {med['loop'] / med['batched']:.2f}x   (rounds: batched "
              f"{', '.join(f'{v:.2f}' for v in times['batched'])}; loop {', '.join(f'{v:.2f}' for v in times['loop'])})")


if __name__ == "__main__":
    main()
