"""PPO training throughput side by side: Stable-Baselines3 PPO vs neuropath PPO (dense, DAPD at 95%),
same environment, same settings (64×64 tanh networks, 2048-step rollouts, 10 epochs of 32 minibatches,
observation and reward normalisation), environment steps per second over whole rollouts + updates.
Also DAPD frozen after its first rollout (`dapd-frozen`: the 95% pathways fixed, as after the freeze) with
the sparse kernels (`--sparse auto`, the default) and without (`dapd-frozen-masked`: dense matmuls of W ⊙ m).

Rounds are interleaved (SB3, dense, DAPD, SB3, ...) so that a slow moment of a shared VM hits all;
medians and ratios are printed. Target (issue #8): neuropath dense >= 1.0x SB3 PPO steps/s.

    python benchmarks/ppo_throughput.py                       # Hopper-v5, 10 rollouts, 3 rounds, 1 thread
    python benchmarks/ppo_throughput.py --env HalfCheetah-v5 --rollouts 5 --rounds 5
    python benchmarks/ppo_throughput.py --hidden 256 256 --methods dense dapd-frozen dapd-frozen-masked
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _throughput import METHODS, method_settings, print_ratios


def time_sb3(env_id: str, steps: int, seed: int, hidden: list[int]) -> float:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    env = VecNormalize(make_vec_env(env_id, n_envs=1, seed=seed), gamma=0.99)
    model = PPO("MlpPolicy", env, learning_rate=3e-4, n_steps=2048, batch_size=64, n_epochs=10, gamma=0.99,
                gae_lambda=0.95, clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
                policy_kwargs={"net_arch": {"pi": hidden, "vf": hidden}, "activation_fn": torch.nn.Tanh},
                seed=seed, device="cpu", verbose=0)
    t0 = time.perf_counter()
    model.learn(steps)
    return steps / (time.perf_counter() - t0)


def time_neuropath(env_id: str, steps: int, seed: int, method: str, hidden: list[int]) -> float:
    from neuropath.training.config import Config
    from neuropath.training.loops.ppo import PPOTrainer

    settings = method_settings(method, freeze_step=2048)   # a frozen variant: after the first (timed) rollout
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config().set({"algo": "ppo", "env": env_id, "steps": steps, "seed": seed,
                            "ppo_hidden": hidden, "eval_every": 10 * steps, "eval_episodes": 1,
                            "checkpoint_every": 10 * steps, "run_dir": str(Path(tmp) / "run"), "progress": False,
                            "threads": 0, **settings})
        trainer = PPOTrainer(cfg)
        trainer.evaluate = lambda: {}        # time training only (SB3 evaluates nothing either)
        t0 = time.perf_counter()
        trainer.train()
        return steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="Hopper-v5")
    p.add_argument("--rollouts", type=int, default=10, help="2048-step rollouts per timed run")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 64], help="actor and value widths (both sides)")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS[:3])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    steps = 2048 * args.rollouts
    results: dict[str, list[float]] = {m: [] for m in args.methods}
    for i in range(args.rounds):
        for m in args.methods:
            results[m].append(time_sb3(args.env, steps, i, args.hidden) if m == "sb3"
                              else time_neuropath(args.env, steps, i, m, args.hidden))
        print(f"round {i}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in results.items()), flush=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"{args.env}, {'x'.join(map(str, args.hidden))}, {steps} timed steps per run, {args.rounds} rounds, "
          f"{args.threads} thread(s), {platform.processor() or platform.machine()}, torch {torch.__version__}")
    for k, v in med.items():
        print(f"  {k:18s} {v:7.0f} steps/s")
    print_ratios(med, "PPO", "  (target >= 1.0)")


if __name__ == "__main__":
    main()
