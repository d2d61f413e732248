"""One Adam step on a layer's weight, PyTorch's plain (single-tensor) CPU implementation vs its fused kernel,
for a dense layer and for a 95%-masked one (95% of the gradients, hence of the moments, exactly zero).

Why it matters: the plain implementation takes ``sqrt`` of the second moments, and on this CPU ``sqrt`` of
zeros runs several times slower than of normal numbers, so a pathway's Adam step cost more than a dense
layer's. Every algorithm now builds its optimizers with ``algos.common.adam`` (fused where PyTorch has it).

    python benchmarks/adam_step.py            # 1 thread, 5 interleaved rounds of 500 steps per case
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

SHAPES = {"MinAtar DQN head 1024x128": (128, 1024), "SAC hidden 256x256": (256, 256),
          "Atari DQN head 3136x512": (512, 3136)}


def time_steps(shape: tuple[int, int], fused: bool, masked: bool, steps: int, seed: int) -> float:
    """Microseconds per ``optimizer.step()`` after 50 untimed steps (the moments settle into their zeros)."""
    g = torch.Generator().manual_seed(seed)
    p = torch.nn.Parameter(torch.randn(shape, generator=g))
    keep = (torch.rand(shape, generator=g) < 0.05).float() if masked else torch.ones(shape)
    grads = [torch.randn(shape, generator=g) * keep for _ in range(8)]
    opt = torch.optim.Adam([p], lr=1e-4, fused=True if fused else None)
    total = 0.0
    for i in range(50 + steps):
        p.grad = grads[i % len(grads)]
        t0 = time.perf_counter()
        opt.step()
        if i >= 50:
            total += time.perf_counter() - t0
    return total / steps * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.threads} thread(s), {platform.processor() or platform.machine()}, torch {torch.__version__}; "
          f"µs per Adam step, median of {args.rounds} interleaved rounds")
    cases = [(f, m) for f in (False, True) for m in (False, True)]
    print(f"{'layer':28s} {'plain dense':>12s} {'plain 95%':>10s} {'fused dense':>12s} {'fused 95%':>10s}"
          f"  {'plain 95%/dense':>15s} {'fused 95%/dense':>15s} {'plain/fused 95%':>15s}")
    for name, shape in SHAPES.items():
        times: dict[tuple[bool, bool], list[float]] = {c: [] for c in cases}
        for r in range(args.rounds):
            for c in cases:
                times[c].append(time_steps(shape, *c, args.steps, r))
        med = {c: statistics.median(v) for c, v in times.items()}
        print(f"{name:28s} {med[(False, False)]:12.0f} {med[(False, True)]:10.0f} {med[(True, False)]:12.0f} "
              f"{med[(True, True)]:10.0f}  {med[(False, True)] / med[(False, False)]:15.2f} "
              f"{med[(True, True)] / med[(True, False)]:15.2f} {med[(False, True)] / med[(True, True)]:15.2f}")


if __name__ == "__main__":
    main()
