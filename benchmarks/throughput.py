"""End-to-end training throughput, side by side in one process: Stable-Baselines3 SAC,
neuropath dense SAC and neuropath SAC under each pathway method (DAPD, static, SET, RigL,
RLx2; mask and topology updates included), same environment, same network sizes, same
batch, one gradient update per environment step.

The sparse-training baselines run at their published update intervals (SET 250, RigL
1000, RLx2 10,000 steps) with topology updates over the whole timed window, and RLx2 with
its n-step target on from the start, so their steady-state cost is what is measured.

Only the steps after the random seed phase are timed (that is where updates run). Rounds
are interleaved (SB3, dense, DAPD, SB3, ...) so that a slow moment of a shared VM hits all
three; the medians and the ratios are printed.

    python benchmarks/throughput.py                          # HalfCheetah-v5, 256x256, 1 and 2 threads
    python benchmarks/throughput.py --steps 3000 --rounds 5 --threads 2
    python benchmarks/throughput.py --methods dense set rigl rlx2 --threads 1
    python benchmarks/throughput.py --methods dense static static:off --threads 1   # sparse execution on/off

A method may carry ``:on``/``:off``/``:auto`` for its ``--sparse`` setting (default auto: the fixed
pathway of static, random and frozen DAPD runs on the sparse kernels, issue #4).

Targets (issue #2): neuropath dense >= 1.0x SB3; DAPD >= 0.9x neuropath dense. Issue #3:
every method's steps/s relative to dense, so the cost of topology updates is visible.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch


def time_sb3(env_id: str, hidden: list[int], seed_steps: int, steps: int, seed: int) -> float:
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback

    class Clock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.t0 = self.t1 = 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps == seed_steps:
                self.t0 = time.perf_counter()
            self.t1 = time.perf_counter()
            return True

    # The DAPD authors' SAC settings, in SB3's vocabulary.
    model = SAC("MlpPolicy", env_id, learning_rate=1e-3, buffer_size=seed_steps + steps, learning_starts=seed_steps,
                batch_size=256, tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1, ent_coef="auto_0.1",
                target_update_interval=2, policy_kwargs={"net_arch": hidden}, seed=seed, device="cpu", verbose=0)
    clock = Clock()
    model.learn(seed_steps + steps, callback=clock)
    return steps / (clock.t1 - clock.t0)


# Per-method settings for the timing runs (see the module docstring).
METHOD_SETTINGS = {"set": {"update_end": 1.0}, "rigl": {"update_end": 1.0},
                   "rlx2": {"update_end": 1.0, "nstep_delay": 0}}


def time_neuropath(env_id: str, hidden: list[int], seed_steps: int, steps: int, seed: int, method: str) -> float:
    import neuropath as npth

    pathway, _, sparse = method.partition(":")

    marks: dict[int, float] = {}

    def clock(step: int, info: dict) -> bool:
        if step in (seed_steps, seed_steps + steps):
            marks[step] = time.perf_counter()
        return True

    with tempfile.TemporaryDirectory() as tmp:
        cfg = npth.Config().set({
            "env": env_id, "pathway": pathway, "hidden": hidden, "steps": seed_steps + steps,
            "seed_steps": seed_steps, "init_steps": 1000, "seed": seed, "run_dir": str(Path(tmp) / "run"),
            "eval_every": 10 * (seed_steps + steps), "checkpoint_every": 10 * (seed_steps + steps),
            "progress": False, "freeze_return": "none", "replay_size": seed_steps + steps,
            "threads": torch.get_num_threads(), "sparse": sparse or "auto", **METHOD_SETTINGS.get(pathway, {}),
        })
        npth.Trainer(cfg).train(callback=clock)
    return steps / (marks[seed_steps + steps] - marks[seed_steps])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--hidden", nargs="+", type=int, default=[256, 256])
    p.add_argument("--seed-steps", type=int, default=1000)
    p.add_argument("--steps", type=int, default=2000, help="timed steps (with updates) per measurement")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--methods", nargs="+", default=["sb3", "dense", "dapd"],
                   help="sb3 and/or neuropath pathway methods: dense dapd static random set rigl rlx2, "
                   "each optionally :on/:off/:auto for --sparse")
    args = p.parse_args()
    if "dense" not in args.methods:
        p.error("--methods must include dense: every ratio is relative to it")

    print(f"# throughput: {args.env}, hidden {args.hidden}, batch 256, {args.steps} timed steps after "
          f"{args.seed_steps} seed steps, {args.rounds} interleaved rounds")
    print(f"# machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads "
          f"available, torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M')}")
    variants = {}
    for m in args.methods:
        if m == "sb3":
            variants["sb3"] = lambda s: time_sb3(args.env, args.hidden, args.seed_steps, args.steps, s)
        else:
            variants[f"neuropath-{m}"] = (lambda s, m=m: time_neuropath(args.env, args.hidden, args.seed_steps,
                                                                       args.steps, s, m))
    for threads in args.threads:
        torch.set_num_threads(threads)
        results: dict[str, list[float]] = {k: [] for k in variants}
        for r in range(args.rounds):
            for name, fn in variants.items():
                results[name].append(fn(r))
        med = {k: statistics.median(v) for k, v in results.items()}
        print(f"\n## {threads} thread(s): steps/s (median of {args.rounds}; all rounds)")
        for k, v in results.items():
            print(f"  {k:16s} {med[k]:7.1f}   [{', '.join(f'{x:.1f}' for x in v)}]")
        pairs = [("neuropath-dense", "sb3")] * ("sb3" in results)
        pairs += [(k, "neuropath-dense") for k in results if k not in ("sb3", "neuropath-dense")]
        targets = {("neuropath-dense", "sb3"): 1.0, ("neuropath-dapd", "neuropath-dense"): 0.9}
        for num, den in pairs:
            ratios = [a / b for a, b in zip(results[num], results[den])]
            target = f"  (target >= {targets[(num, den)]})" if (num, den) in targets else ""
            print(f"  ratio {num + ' / ' + den:36s} = {med[num] / med[den]:.2f} of medians; per round "
                  f"{', '.join(f'{r:.2f}' for r in ratios)}{target}")


if __name__ == "__main__":
    main()
