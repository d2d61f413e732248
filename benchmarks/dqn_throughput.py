"""DQN training throughput side by side: Stable-Baselines3 DQN vs neuropath DQN (dense, DAPD at 95%), same
game, same settings (Adam 1e-4, batch 32, Huber loss, one update every --train-every steps after
--learning-starts, replay as large as the run), environment steps per second over the whole run.

- MinAtar (10×10 grids): both run the small network of Young & Tian (one 16-channel 3×3 convolution and
  a 128-unit layer); SB3 gets it as a features extractor, since its NatureCNN does not fit 10×10 inputs.
- Atari: each library's own pipeline as its users run it: SB3's ``make_atari_env`` + ``VecFrameStack(4)``
  and ``CnnPolicy`` (Nature network); neuropath's ``envs/pixels.py`` and its Nature network.

Rounds are interleaved (SB3, dense, DAPD, SB3, ...) so that a slow moment of a shared machine hits all;
medians and ratios are printed. Evaluation is off on both sides. Also DAPD frozen at learning start
(`dapd-frozen`: the 95% head fixed, as after the freeze) with the sparse kernels (`--sparse auto`) and without
(`dapd-frozen-masked`: dense matmuls of W ⊙ m).

    python benchmarks/dqn_throughput.py                                  # MinAtar/Breakout-v1 and ALE/Breakout-v5
    python benchmarks/dqn_throughput.py --games MinAtar/Asterix-v1 --steps 20000 --rounds 5
    python benchmarks/dqn_throughput.py --games MinAtar/Breakout-v1 --methods dense dapd-frozen dapd-frozen-masked
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
from torch import nn


def _minatar_extractor():
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class MinAtarTorso(BaseFeaturesExtractor):
        """Young & Tian's MinAtar torso: 16 3×3 filters, stride 1, then a 128-unit layer."""

        def __init__(self, observation_space, features_dim: int = 128) -> None:
            super().__init__(observation_space, features_dim)
            c, h, w = observation_space.shape
            self.net = nn.Sequential(nn.Conv2d(c, 16, 3, 1), nn.ReLU(), nn.Flatten(),
                                     nn.Linear(16 * (h - 2) * (w - 2), features_dim), nn.ReLU())

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return self.net(obs)

    return MinAtarTorso


def time_sb3(game: str, steps: int, starts: int, train_every: int, seed: int) -> float:
    from stable_baselines3 import DQN

    common = dict(learning_rate=1e-4, buffer_size=steps, learning_starts=starts, batch_size=32, gamma=0.99,
                  train_freq=train_every, gradient_steps=1, target_update_interval=1000 * train_every,
                  exploration_fraction=0.5, exploration_final_eps=0.01, seed=seed, device="cpu", verbose=0)
    if game.startswith("MinAtar/"):
        from neuropath.envs.pixels import make_image_env
        env = make_image_env(game)                         # [C, H, W] floats, as neuropath sees them
        model = DQN("MlpPolicy", env, policy_kwargs={"features_extractor_class": _minatar_extractor(),
                                                     "net_arch": [], "normalize_images": False}, **common)
    else:
        import ale_py
        import gymnasium as gym
        from stable_baselines3.common.env_util import make_atari_env
        gym.register_envs(ale_py)                          # the ALE/ ids, also when no MinAtar game ran first
        from stable_baselines3.common.vec_env import VecFrameStack
        env = VecFrameStack(make_atari_env(game, n_envs=1, seed=seed), n_stack=4)
        model = DQN("CnnPolicy", env, optimize_memory_usage=False, **common)
    t0 = time.perf_counter()
    model.learn(steps)
    return steps / (time.perf_counter() - t0)


def time_neuropath(game: str, steps: int, starts: int, train_every: int, seed: int, method: str) -> float:
    from neuropath.training.config import Config
    from neuropath.training.loops.dqn import DQNTrainer

    settings = method_settings(method, freeze_step=starts)       # a frozen variant: frozen when learning starts
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config().set({"algo": "dqn", "env": game, "steps": steps, "seed": seed, **settings,
                            "seed_steps": starts, "train_every": train_every, "replay_size": steps,
                            "eps_decay_steps": steps // 2, "init_steps": min(1000, starts), "eval_every": 10 * steps,
                            "checkpoint_every": 10 * steps, "run_dir": str(Path(tmp) / "run"), "progress": False,
                            "threads": 0, "device": "cpu"})
        trainer = DQNTrainer(cfg)
        trainer.evaluate = lambda: {}         # time training only (SB3 evaluates nothing either)
        trainer.save_checkpoint = lambda: None
        t0 = time.perf_counter()
        trainer.train()
        return steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--games", nargs="+", default=["MinAtar/Breakout-v1", "ALE/Breakout-v5"])
    p.add_argument("--steps", type=int, default=None, help="steps per timed run (default: 10k MinAtar, 4k Atari)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS[:3])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.rounds} rounds, {args.threads} thread(s), {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}")
    for game in args.games:
        minatar = game.startswith("MinAtar/")
        steps = args.steps or (10_000 if minatar else 4_000)
        starts, every = (1000, 1) if minatar else (1000, 4)
        res: dict[str, list[float]] = {m: [] for m in args.methods}
        for i in range(args.rounds):
            for m in args.methods:
                res[m].append(time_sb3(game, steps, starts, every, i) if m == "sb3"
                              else time_neuropath(game, steps, starts, every, i, m))
            print(f"  {game} round {i}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in res.items()), flush=True)
        med = {k: statistics.median(v) for k, v in res.items()}
        print(f"{game}: {steps} steps per run (learning starts {starts}, an update every {every})")
        for k, v in med.items():
            print(f"  {k:18s} {v:7.0f} steps/s")
        print_ratios(med, "DQN")


if __name__ == "__main__":
    main()
