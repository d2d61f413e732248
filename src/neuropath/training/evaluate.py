"""Evaluation: deterministic episodes of any policy with a ``predict``-like callable."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np


def run_episodes(env: gym.Env, act: Callable[[np.ndarray], np.ndarray], episodes: int, seed: int,
                 *, frames: list | None = None) -> tuple[list[float], list[int]]:
    """Play ``episodes`` episodes; the first reset is seeded with ``seed`` so an evaluation
    never depends on what the environment did before (a resumed run evaluates identically)."""
    returns, lengths = [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed if i == 0 else None)
        done, ret, n = False, 0.0, 0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            ret += float(reward)
            n += 1
            done = terminated or truncated
            if frames is not None:
                frames.append(env.render())
        returns.append(ret)
        lengths.append(n)
    return returns, lengths


def summarise(returns: list[float], lengths: list[int]) -> dict[str, float]:
    r = np.asarray(returns, dtype=np.float64)
    return {"return_mean": float(r.mean()), "return_std": float(r.std()), "return_min": float(r.min()),
            "return_max": float(r.max()), "length_mean": float(np.mean(lengths))}
