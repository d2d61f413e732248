"""A trained policy on its own: load it from a run, act with SB3's ``predict`` signature,
evaluate it, save it to one file. Anything with ``predict`` works with SB3's
``evaluate_policy`` too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .algos.sac import Actor
from .envs.make import make_env
from .pathways import density
from .training import checkpoint
from .training.evaluate import PredictsLikeSB3, run_episodes, summarise
from .training.policy_file import read_actor, save_actor
from .training.run_dir import latest_checkpoint, load_run_config


class Policy(PredictsLikeSB3):
    """The actor of a run (its pathway included) plus the env's action bounds; ``predict`` is SB3's
    (stochastic unless ``deterministic=True``)."""

    def __init__(self, actor: Actor, low: np.ndarray, high: np.ndarray, env_id: str) -> None:
        self.actor = actor.eval()
        self.low, self.high, self.env_id = np.asarray(low), np.asarray(high), env_id

    @property
    def density(self) -> float:
        return density(self.actor)

    @torch.no_grad()
    def act_unit(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Action in [-1, 1] (what the agent was trained to output)."""
        x = torch.as_tensor(observation, dtype=torch.float32)
        single = x.dim() == 1
        x = x.unsqueeze(0) if single else x
        a = torch.tanh(self.actor(x)[0]) if deterministic else self.actor.sample(x)[0]
        a = a.numpy()
        return a[0] if single else a

    def save(self, path: str | Path) -> None:
        save_actor(self.actor, self.low, self.high, self.env_id, path)

    @classmethod
    def load(cls, path: str | Path) -> "Policy":
        return cls(*read_actor(path))


def load_policy(run_dir: str | Path):
    """The policy of a run's latest checkpoint (a run directory or a saved policy file), for any kind of
    run that has one (`neuropath.kinds`): SAC's `Policy`, PPO's, DQN's, an offline run's; each with SB3's
    ``predict``."""
    from .kinds import kind_of
    run_dir = Path(run_dir)
    if run_dir.is_file():
        return Policy.load(run_dir)
    return kind_of(load_run_config(run_dir)).load_policy(run_dir)


def sac_policy(run_dir: Path) -> Policy:
    """The actor of an online SAC run's latest checkpoint."""
    saved = latest_checkpoint(run_dir)
    cfg, meta = saved.cfg, saved.meta
    actor = Actor(meta["obs_dim"], meta["act_dim"], meta["hidden"])
    checkpoint.load_trained(actor, saved.state["algo"], saved.path, prefix="actor.")
    env = make_env(cfg.run.env)
    try:
        space = env.unwrapped.action_space
        return Policy(actor, space.low, space.high, cfg.run.env)
    finally:
        env.close()


def evaluate(policy: Policy, env_id: str | None = None, episodes: int = 10, seed: int = 0,
             deterministic: bool = True, render: bool = False) -> dict:
    """Mean ± std return over ``episodes``; with ``render`` also the RGB frames."""
    from .envs.pixels import is_atari, is_minatar, make_image_env
    env_id = env_id or policy.env_id
    if is_atari(env_id) or is_minatar(env_id):
        env = make_image_env(env_id)
    else:
        env = make_env(env_id, render_mode="rgb_array" if render else None, actions="any")
    frames: list | None = [] if render else None
    try:
        returns, lengths = run_episodes(env, lambda o: policy.act_unit(o, deterministic), episodes,
                                        seed, frames=frames)
    finally:
        env.close()
    out = {**summarise(returns, lengths), "returns": returns, "episodes": episodes}
    if render:
        out["frames"] = frames
    return out
