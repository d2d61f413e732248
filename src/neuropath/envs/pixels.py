"""DQN's environments: MinAtar (10×10 channels), Atari through ale-py, and Gymnasium's discrete-action
vector environments (CartPole, Acrobot, MountainCar, LunarLander: `check_dqn_env`, `make_dqn_env`).

Observations come out channel-first: MinAtar's ``[10, 10, C]`` bool grid as ``[C, 10, 10]`` uint8;
Atari as 4 stacked 84×84 grey frames ``[4, 84, 84]`` uint8 (Gymnasium's `AtariPreprocessing`: no-op
starts up to 30, frame skip 4 with max-pooling of the last two frames, then `FrameStackObservation`).
The base Atari env runs with ``frameskip=1`` (AtariPreprocessing refuses another) and v5's sticky
actions. Life loss is reported by ``info["lives"]``; the DQN loop treats it as a terminal for
bootstrapping only (the game goes on), and evaluation plays whole games.
"""

from __future__ import annotations

import difflib
import warnings

import gymnasium as gym
import numpy as np

from ..errors import UsageError

MINATAR_GAMES = ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")


def is_minatar(env_id: str) -> bool:
    return env_id.startswith("MinAtar/")


def is_atari(env_id: str) -> bool:
    return env_id.startswith("ALE/")


def _register() -> None:
    try:
        import minatar.gym
        if "MinAtar/Breakout-v1" not in gym.registry:
            minatar.gym.register_envs()
    except ImportError:
        pass
    try:
        import ale_py
        gym.register_envs(ale_py)
    except ImportError:
        pass


def check_image_env(env_id: str) -> None:
    """One clear line for an id DQN cannot run: not MinAtar/ALE, a MinAtar game that does not exist,
    an Atari game ale-py does not ship."""
    _register()
    if is_minatar(env_id):
        game = env_id.split("/", 1)[1].split("-")[0]
        if game not in MINATAR_GAMES or env_id not in gym.registry:
            close = difflib.get_close_matches(game, MINATAR_GAMES, n=1)
            hint = f"; did you mean MinAtar/{close[0]}-v1?" if close else ""
            raise UsageError(f"unknown MinAtar game {env_id!r}{hint} (games: {', '.join(MINATAR_GAMES)}; "
                             "ids MinAtar/<Game>-v1)")
        return
    if is_atari(env_id):
        if env_id not in gym.registry:
            names = sorted({k.split("/")[1].split("-")[0] for k in gym.registry if k.startswith("ALE/")})
            game = env_id.split("/", 1)[1].split("-")[0]
            close = difflib.get_close_matches(game, names, n=1)
            hint = f"; did you mean ALE/{close[0]}-v5?" if close else ""
            raise UsageError(f"ale-py ships no Atari game {env_id!r}{hint} ({len(names)} games, ids ALE/<Game>-v5)")
        return
    if env_id in gym.registry:
        raise UsageError(f"{env_id!r} is not an image game (MinAtar/<Game>-v1 or ALE/<Game>-v5)")
    raise UsageError(f"unknown environment {env_id!r} (DQN: MinAtar/<Game>-v1, ALE/<Game>-v5, or a discrete "
                     "vector environment such as CartPole-v1)")


def is_image_env(env_id: str) -> bool:
    return is_minatar(env_id) or is_atari(env_id)


def dqn_torso(env_id: str) -> str:
    """The Q-network's torso for ``env_id`` (`neuropath.algos.dqn.TORSOS`)."""
    return "nature" if is_atari(env_id) else "minatar" if is_minatar(env_id) else "mlp"


def check_dqn_env(env_id: str) -> None:
    """One clear line for an id DQN cannot run: image games by `check_image_env`'s rules; otherwise a
    registered Gymnasium environment with discrete actions and flat (vector) observations."""
    if is_image_env(env_id):
        check_image_env(env_id)
        return
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UsageError(f"unknown environment {env_id!r}{hint} (DQN: a discrete vector environment such as "
                         "CartPole-v1, MinAtar/<Game>-v1 or ALE/<Game>-v5)")
    env = gym.make(env_id)
    try:
        obs, act = env.observation_space, env.action_space
    finally:
        env.close()
    if not isinstance(act, gym.spaces.Discrete):
        raise UsageError(f"--algo dqn needs discrete actions; {env_id!r} has {act} (SAC or PPO take it)")
    if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1:
        raise UsageError(f"--algo dqn takes vector observations or MinAtar/Atari games; {env_id!r} observes {obs}")


def make_dqn_env(env_id: str) -> gym.Env:
    """The environment DQN trains and evaluates on: `make_image_env` for games, else Gymnasium's own
    (float32 vector observations, its time limit)."""
    if is_image_env(env_id):
        return make_image_env(env_id)
    check_dqn_env(env_id)
    return gym.make(env_id)


class _ChannelFirst(gym.ObservationWrapper):
    """MinAtar's [H, W, C] bool grid as [C, H, W] uint8."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        h, w, c = env.observation_space.shape
        self.observation_space = gym.spaces.Box(0, 1, (c, h, w), np.uint8)

    def observation(self, obs: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(obs, -1, 0), dtype=np.uint8)


def make_image_env(env_id: str, *, max_episode_steps: int | None = None) -> gym.Env:
    """The environment DQN trains and evaluates on (see the module docstring)."""
    check_image_env(env_id)
    if is_minatar(env_id):
        env = gym.make(env_id, max_episode_steps=max_episode_steps)
        return _ChannelFirst(env)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        env = gym.make(env_id, frameskip=1, max_episode_steps=max_episode_steps)
    env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84,
                                          terminal_on_life_loss=False, grayscale_obs=True)
    return gym.wrappers.FrameStackObservation(env, 4)
