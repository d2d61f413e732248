"""Evaluation: deterministic episodes of any policy with a ``predict``-like callable; SB3's ``predict``
for every run's policy."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np


EVAL_SEED_OFFSET = 1_000_003
"""evaluation episodes are seeded ``seed + EVAL_SEED_OFFSET + step``: never a training episode's seed"""


def eval_seed(seed: int, step: int) -> int:
    """The seed of the evaluation at ``step`` of a run seeded ``seed`` (every loop's: a resumed run
    evaluates as an uninterrupted one, and no evaluation replays a training episode)."""
    return seed + EVAL_SEED_OFFSET + step


class PredictsLikeSB3:
    """SB3's ``predict(observation, state, episode_start, deterministic=False)`` from a policy's
    ``act_unit(observation, deterministic)``: the action in the environment's own space, and no state.
    Continuous policies act in [-1, 1] and set ``low``/``high``, the environment's bounds; discrete ones
    leave them ``None``. As in SB3 the default is the stochastic action (the policy's sample; DQN's
    ε-greedy one with the run's --eval-epsilon): evaluation asks for ``deterministic=True``."""

    low: np.ndarray | None = None
    high: np.ndarray | None = None

    def predict(self, observation: np.ndarray, state=None, episode_start=None,
                deterministic: bool = False) -> tuple[np.ndarray | int, None]:
        a = self.act_unit(observation, deterministic)
        if self.low is None:
            return a, None
        return self.low + (np.asarray(a) + 1.0) * 0.5 * (self.high - self.low), None


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
