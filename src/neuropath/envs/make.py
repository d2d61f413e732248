"""Environment construction: Gymnasium MuJoCo v5 (and any registered continuous-action id).

Agents act in [-1, 1]; `RescaleAction` maps that onto the environment's bounds. Episodes
end on termination or on the time limit; only termination stops bootstrapping.
"""

from __future__ import annotations

import difflib
import warnings

import gymnasium as gym
import numpy as np

from ..errors import UsageError

MUJOCO_V5 = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5", "Swimmer-v5",
             "InvertedPendulum-v5", "InvertedDoublePendulum-v5", "Reacher-v5", "Pusher-v5")


def check_env_id(env_id: str) -> None:
    """Fail with one clear line when ``env_id`` is not a registered environment (MinAtar and Atari ids are
    registered on first use, and checked by their own rules)."""
    if env_id.startswith(("MinAtar/", "ALE/")):
        from .pixels import check_image_env
        check_image_env(env_id)
        return
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UsageError(f"unknown environment {env_id!r}{hint} (MuJoCo ids: {', '.join(MUJOCO_V5)})")


def make_env(env_id: str, *, render_mode: str | None = None, actions: str = "continuous") -> gym.Env:
    """A flat-observation environment; ``actions="continuous"`` (SAC) refuses discrete action
    spaces, ``"any"`` (PPO) takes Box and Discrete. Box actions are rescaled to [-1, 1]."""
    check_env_id(env_id)
    with warnings.catch_warnings():     # "Box low's precision lowered" on float64 bounds: harmless
        warnings.filterwarnings("ignore", message=".*precision lowered.*")
        env = gym.make(env_id, render_mode=render_mode)
        return _checked(env, env_id, actions)


def _checked(env: gym.Env, env_id: str, actions: str = "continuous") -> gym.Env:
    if actions == "any" and isinstance(env.action_space, gym.spaces.Discrete):
        if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
            env.close()
            raise UsageError(f"environment {env_id!r} needs a flat Box observation for an MLP agent")
        return env
    if not isinstance(env.action_space, gym.spaces.Box):
        env.close()
        raise UsageError(f"environment {env_id!r} has {type(env.action_space).__name__} actions; "
                         + ("SAC needs continuous (Box) actions (PPO takes discrete ones: --algo ppo)"
                            if actions == "continuous" else "PPO takes Box or Discrete actions"))
    if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
        env.close()
        raise UsageError(f"environment {env_id!r} needs a flat Box observation for an MLP agent")
    if not (np.allclose(env.action_space.low, -1) and np.allclose(env.action_space.high, 1)):
        env = gym.wrappers.RescaleAction(env, -1.0, 1.0)
    return env


def env_rng_state(env: gym.Env) -> dict:
    """The environment's own RNG state: with it, the next ``reset()`` is reproducible."""
    return env.unwrapped.np_random.bit_generator.state


def set_env_rng_state(env: gym.Env, state: dict) -> None:
    env.unwrapped.np_random.bit_generator.state = state
