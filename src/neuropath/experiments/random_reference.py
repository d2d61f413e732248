"""The return of a uniform-random policy: the zero point of a normalised score.

Where an environment's returns can be negative (HalfCheetah's control cost outweighs a standing agent's
reward, Pong's −21), "score / dense" is not a scale: a run at −200 would have a negative percentage of
a dense run at 5000 and the same magnitude as one at +200. The report then normalises the way Atari's
human-normalised and D4RL's scores do, ``(score − random) / (dense − random)``: 0 = acting uniformly at
random, 1 = dense. The random return is measured here, on the same environment a run evaluates on (no
reference table to download or go stale), seeded, so a report is reproducible.
"""

from __future__ import annotations

import functools

import numpy as np

from ..envs.make import make_env
from ..training.evaluate import run_episodes

RANDOM_EPISODES = 10
RANDOM_SEED = 0


@functools.cache
def random_policy_return(env_id: str, episodes: int = RANDOM_EPISODES, seed: int = RANDOM_SEED) -> float:
    """Mean return of ``episodes`` episodes of uniformly random actions on ``env_id`` (MuJoCo/Gymnasium
    ids as SAC and PPO build them; MinAtar/Atari ids as DQN does). Cached per process: a report asks once
    per environment."""
    if env_id.startswith(("MinAtar/", "ALE/")):
        from ..envs.pixels import make_image_env
        env = make_image_env(env_id)
    else:
        env = make_env(env_id, actions="any")
    env.action_space.seed(seed)
    try:
        returns, _ = run_episodes(env, lambda _obs: env.action_space.sample(), episodes, seed)
    finally:
        env.close()
    return float(np.mean(returns))
