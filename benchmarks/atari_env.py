"""Atari environment steps/s: the DQN loop's Gymnasium pipeline vs ale-py's own C++ vector environment.

Issue #8 asks for ale-py's ``AtariVectorEnv`` "where it is faster". Nature DQN acts in one environment, so
the comparison that decides it is one environment each way, with the same preprocessing (v5 sticky actions
0.25, up to 30 no-op starts, frame skip 4 with max-pooling, 84×84 grey, 4 stacked frames); the vector env
with 4 environments is printed too (steps of all environments per second), for what batching would buy.
Random actions, so only the environment is timed; the ratio to put beside it is a DQN step's whole cost
(``dqn_throughput.py``: ~8 ms per step on Atari Breakout, 1 thread).

    python benchmarks/atari_env.py                 # Breakout and Pong, 3 interleaved rounds of 3000 steps
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

import numpy as np

from neuropath.envs.pixels import make_image_env


def gym_pipeline(env_id: str, steps: int, seed: int) -> float:
    """Steps/s of ``make_image_env`` (what ``DQNTrainer`` steps), resetting at each game's end."""
    env = make_image_env(env_id)
    env.reset(seed=seed)
    n_actions = int(env.action_space.n)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(int(rng.integers(n_actions)))
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - t0)
    env.close()
    return rate


def vector_env(env_id: str, num_envs: int, steps: int, seed: int) -> float:
    """Environment steps/s (over all ``num_envs``) of ale-py's AtariVectorEnv, one thread per core
    at most, same preprocessing; it resets finished games itself (next-step autoreset)."""
    from ale_py.vector_env import AtariVectorEnv
    game = env_id.split("/", 1)[1].split("-")[0]
    game = "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(game))
    env = AtariVectorEnv(game, num_envs, num_threads=min(num_envs, os.cpu_count() or 1), repeat_action_probability=0.25,
                         noop_max=30, frameskip=4, maxpool=True, stack_num=4, img_height=84, img_width=84,
                         reward_clipping=False, use_fire_reset=False)
    env.reset(seed=seed)
    n_actions = int(env.single_action_space.n)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(rng.integers(n_actions, size=num_envs))
    rate = steps * num_envs / (time.perf_counter() - t0)
    env.close()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--games", nargs="+", default=["ALE/Breakout-v5", "ALE/Pong-v5"])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    print(f"{platform.processor() or platform.machine()}; environment steps/s, median of {args.rounds} "
          f"interleaved rounds of {args.steps} steps")
    print(f"{'game':18s} {'gym, 1 env':>11s} {'ale vec, 1':>11s} {'ale vec, 4':>11s}  {'vec1 / gym':>10s} "
          f"{'vec4 / gym':>10s}")
    for game in args.games:
        rates: dict[str, list[float]] = {"gym": [], "vec1": [], "vec4": []}
        for r in range(args.rounds):
            rates["gym"].append(gym_pipeline(game, args.steps, r))
            rates["vec1"].append(vector_env(game, 1, args.steps, r))
            rates["vec4"].append(vector_env(game, 4, args.steps // 4, r))
        med = {k: statistics.median(v) for k, v in rates.items()}
        print(f"{game:18s} {med['gym']:11.0f} {med['vec1']:11.0f} {med['vec4']:11.0f}  "
              f"{med['vec1'] / med['gym']:10.2f} {med['vec4'] / med['gym']:10.2f}")


if __name__ == "__main__":
    main()
