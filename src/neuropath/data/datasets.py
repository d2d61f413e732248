"""Offline datasets made here, in Minari's format (nothing can be downloaded on these machines): what they
hold, reading them, and the episodes they are made of. The makers that need a trained run are in
`neuropath.experiments.make_datasets` (above ``training/``; this module is below it).

MuJoCo kinds, from a `neuropath train` run directory (D4RL's recipe, on our own runs):

- ``expert``: rollouts of the run's final policy (stochastic actions, as it acted while training);
- ``medium``: rollouts of the policy snapshot whose evaluation return is closest to a third of the
  final one (snapshots are kept at every evaluation, ``RUN/snapshots/``);
- ``medium-replay`` / ``expert-replay``: the run's replay buffer up to that snapshot / to the end;
- ``medium-expert``: the medium and expert episodes together, half each;
- ``random``: uniformly random actions.

``transitions`` caps a dataset's size: episodes are drawn in a seeded random order until the cap (the
last one cut, marked truncated). Every dataset stores how it was made and its reference scores (mean
return of a random policy and of the run's final policy over ``REFERENCE_EPISODES`` episodes, measured
when it is made: D4RL's normalisation 100·(score − random)/(expert − random)) in Minari's metadata (a
sentence in ``description``, the details in the ``neuropath`` field) and in ``neuropath.json`` beside it.
Datasets live under ``$MINARI_DATASETS_PATH`` (Minari's default ``~/.minari/datasets``), never in git; an
existing id is never overwritten.

Actions are stored in the environment's own bounds (``dataset.action_space`` is the registered env's, e.g.
Box(-3, 3) for InvertedPendulum), and every rollout episode keeps its reset seed, so
``dataset.recover_environment()`` replays an episode exactly, as Minari users expect. The agents here act
in [-1, 1] (`make_env` rescales), so the reader (`training_actions`) maps stored actions back to [-1, 1].
Datasets made before this (no ``actions`` entry in the ``neuropath`` provenance) stored [-1, 1] actions and
are read as they are.
"""

from __future__ import annotations

import importlib.metadata
import json

import numpy as np

from ..errors import UsageError

MUJOCO_KINDS = ("expert", "medium", "medium-replay", "expert-replay", "medium-expert", "random")
REFERENCE_EPISODES = 10
ENV_ACTIONS = "env"
"""``neuropath["actions"]`` of a dataset whose actions are in the environment's own bounds (absent: an
older neuropath dataset, actions rescaled to [-1, 1])"""


def default_id(env_id: str, kind: str) -> str:
    return f"neuropath/{env_id.split('-')[0].lower()}/{kind}-v0"


# ---- episodes ------------------------------------------------------------------------------------

class Episode:
    """One episode: observations (T+1), actions, rewards, terminations, truncations (T), and the seed its
    first ``reset`` got (None where unknown: replay-buffer episodes), which Minari stores per episode."""

    def __init__(self, obs: list, actions: list, rewards: list, terminated: bool, seed: int | None = None) -> None:
        self.obs, self.actions, self.rewards = np.asarray(obs, np.float32), np.asarray(actions, np.float32), \
            np.asarray(rewards, np.float32)
        self.terminated = terminated
        self.seed = seed

    def __len__(self) -> int:
        return len(self.actions)

    def cut(self, n: int) -> "Episode":
        return Episode(self.obs[:n + 1], self.actions[:n], self.rewards[:n], False, self.seed)

    def with_actions(self, actions: np.ndarray) -> "Episode":
        return Episode(self.obs, actions, self.rewards, self.terminated, self.seed)

    def buffer(self, index: int):
        from minari.data_collector import EpisodeBuffer
        t = len(self)
        term = np.zeros(t, bool)
        trunc = np.zeros(t, bool)
        if self.terminated:
            term[-1] = True
        else:
            trunc[-1] = True
        return EpisodeBuffer(id=index, seed=self.seed, observations=self.obs, actions=self.actions,
                             rewards=self.rewards, terminations=term, truncations=trunc)


# ---- actions: the agents' [-1, 1] and the environment's own bounds -------------------------------

def _unit_bounds(space) -> bool:
    """Bounds already [-1, 1] (as `make_env` decides), or none to rescale by (not a Box, unbounded):
    actions are left as they are, so such actions stay bit-exact."""
    import gymnasium as gym
    if not isinstance(space, gym.spaces.Box) or not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        return True
    return bool(np.allclose(space.low, -1.0) and np.allclose(space.high, 1.0))


def to_env_actions(unit: np.ndarray, space) -> np.ndarray:
    """[-1, 1] actions in the Box ``space``'s own bounds (float32, what the environment is stepped with)."""
    unit = np.asarray(unit, np.float32)
    if _unit_bounds(space):
        return unit
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    return (low + (unit.astype(np.float64) + 1.0) * 0.5 * (high - low)).astype(np.float32)


def to_unit_actions(actions: np.ndarray, space) -> np.ndarray:
    """Actions in ``space``'s bounds mapped to [-1, 1] (clipped: the IQL actor's log-likelihood of a
    tanh policy is infinite outside it, and float rounding can step over the edge)."""
    actions = np.asarray(actions, np.float32)
    if _unit_bounds(space):
        return actions
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    return np.clip(2.0 * (actions.astype(np.float64) - low) / (high - low) - 1.0, -1.0, 1.0).astype(np.float32)


def provenance(metadata: dict) -> dict:
    """How a neuropath dataset was made (the ``neuropath`` metadata field); datasets made before that
    field kept it as JSON in ``description``. Empty for datasets made elsewhere."""
    made = metadata.get("neuropath")
    if isinstance(made, dict):
        return made
    description = metadata.get("description")
    if isinstance(description, str) and description.startswith("{"):
        try:
            return json.loads(description)
        except json.JSONDecodeError:
            return {}
    return {}


def made_by_neuropath(metadata: dict) -> bool:
    author = metadata.get("author")
    return author == "neuropath" or (isinstance(author, (set, list, tuple)) and "neuropath" in author)


def training_actions(actions: np.ndarray, metadata: dict) -> np.ndarray:
    """A dataset's stored actions in the [-1, 1] the offline agents act in. Stored in the environment's
    bounds (``dataset.action_space``) unless it is a neuropath dataset from before ``actions`` was
    recorded, whose actions were stored rescaled already."""
    if made_by_neuropath(metadata) and provenance(metadata).get("actions") != ENV_ACTIONS:
        return np.asarray(actions, np.float32)
    return to_unit_actions(actions, metadata["action_space"])


def requirements(*packages: str) -> list[str]:
    """pip requirements to recreate the environment (Minari warns in ``recover_environment`` when they
    are not met): each package at least at the version installed when the dataset was made, since
    MuJoCo's physics and the environments' dynamics change between releases. ``name[extra]`` keeps the extra."""
    out = []
    for spec in packages:
        name = spec.split("[")[0]
        try:
            out.append(f"{spec}>={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def env_space_env(env_id: str):
    """``env_id`` as registered, actions in its own bounds (what Minari's ``recover_environment`` makes),
    after `make_env`'s checks (Box actions, flat observations)."""
    import gymnasium as gym

    from ..envs.make import make_env
    env = make_env(env_id)
    return env.env if isinstance(env, gym.wrappers.RescaleAction) else env


# ---- making episodes -----------------------------------------------------------------------------

def rollouts(env, act, transitions: int, seed: int) -> list[Episode]:
    """Whole episodes of ``act(obs) -> action in [-1, 1]`` until ``transitions`` steps are collected, in
    ``env``'s own action bounds: it is stepped with, and the episode stores, the rescaled action."""
    episodes, total, k = [], 0, 0
    while total < transitions:
        obs, _ = env.reset(seed=seed + k)
        o, a, r = [obs], [], []
        while True:
            action = to_env_actions(act(obs), env.action_space)
            obs, reward, terminated, truncated, _ = env.step(action)
            o.append(obs)
            a.append(action)
            r.append(reward)
            if terminated or truncated:
                break
        episodes.append(Episode(o, a, r, bool(terminated), seed + k))
        total += len(a)
        k += 1
    return episodes


def replay_episodes(replay: np.ndarray, obs_dim: int, act_dim: int, rows: int) -> list[Episode]:
    """Split the first ``rows`` replay rows (oldest first: obs, action, reward, next_obs, not_done)
    into episodes: one ends where a row's next_obs is not the next row's obs."""
    data = replay[:rows]
    obs, act = data[:, :obs_dim], data[:, obs_dim:obs_dim + act_dim]
    rew = data[:, obs_dim + act_dim]
    nxt = data[:, obs_dim + act_dim + 1:2 * obs_dim + act_dim + 1]
    not_done = data[:, 2 * obs_dim + act_dim + 1]
    ends = np.flatnonzero(np.any(nxt[:-1] != obs[1:], axis=1)).tolist() + [len(data) - 1]
    episodes, start = [], 0
    for end in ends:
        sl = slice(start, end + 1)
        episodes.append(Episode(np.concatenate([obs[sl], nxt[end:end + 1]]), act[sl], rew[sl],
                                bool(not_done[end] == 0)))
        start = end + 1
    return episodes


def cap(episodes: list[Episode], transitions: int | None, seed: int) -> list[Episode]:
    if transitions is None:
        return episodes
    order = np.random.default_rng(seed).permutation(len(episodes))
    out, total = [], 0
    for i in order:
        if total >= transitions:
            break
        ep = episodes[i]
        ep = ep if total + len(ep) <= transitions else ep.cut(transitions - total)
        out.append(ep)
        total += len(ep)
    return out


# ---- MuJoCo datasets from a run ------------------------------------------------------------------

def list_datasets() -> str:
    import minari
    local = minari.list_local_datasets()
    if not local:
        return "no local datasets (make one: neuropath dataset make RUN_DIR KIND)"
    lines = ["| id | episodes | transitions | behaviour return | random / expert reference |", "|---|---|---|---|---|"]
    for dataset_id in sorted(local):
        info = _info(dataset_id)
        if not info:
            dataset_id += " (no neuropath.json: incomplete, or not made by neuropath)"
        lines.append(f"| {dataset_id} | {info.get('episodes', '?')} | {info.get('transitions', '?')} | "
                     f"{_fmt(info.get('behaviour_return_mean'))} | {_fmt(info.get('ref_min_score'))} / "
                     f"{_fmt(info.get('ref_max_score'))} |")
    return "\n".join(lines)


def show_dataset(dataset_id: str) -> str:
    import minari
    if dataset_id not in minari.list_local_datasets():
        raise UsageError(f"no local dataset {dataset_id!r} (see `neuropath dataset list`)")
    data = minari.load_dataset(dataset_id)
    check_complete(dataset_id, data.storage.metadata)
    info = _info(dataset_id)
    lines = [f"{dataset_id}: {data.total_episodes} episodes, {data.total_steps} transitions",
             f"observation space {data.observation_space}, action space {data.action_space}"]
    lines += [f"{k}: {v}" for k, v in info.items()]
    return "\n".join(lines)


def check_complete(dataset_id: str, metadata: dict) -> None:
    """neuropath writes ``neuropath.json`` after Minari has written the data: a neuropath dataset
    without it was cut while being written (killed `dataset make`) and must not be trained on."""
    import minari
    if made_by_neuropath(metadata) and not (minari.storage.get_dataset_path(dataset_id) / "neuropath.json").is_file():
        raise UsageError(f"dataset {dataset_id!r} is incomplete (its writing was interrupted); remove it "
                         f"(minari delete {dataset_id}) and make it again")


def _info(dataset_id: str) -> dict:
    import minari
    path = minari.storage.get_dataset_path(dataset_id) / "neuropath.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _fmt(x) -> str:
    return "?" if x is None else f"{x:.1f}"
