"""Offline datasets made here, in Minari's format (nothing can be downloaded on these machines).

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

import csv
import importlib.metadata
import json
import warnings
from pathlib import Path
from typing import Any

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

def _snapshots(run_dir: Path) -> dict[int, Path]:
    return {int(p.stem.split("-")[1]): p for p in sorted((run_dir / "snapshots").glob("policy-*.pt"))}


def medium_snapshot(run_dir: Path) -> tuple[int, Path, float]:
    """The snapshot whose evaluation return is closest to a third of the final evaluation's."""
    snaps = _snapshots(run_dir)
    rows = list(csv.DictReader(open(run_dir / "metrics.csv"))) if (run_dir / "metrics.csv").is_file() else []
    evals = {int(r["step"]): float(r["return_mean"]) for r in rows if int(r["step"]) in snaps}
    if len(evals) < 2:
        raise UsageError(f"{str(run_dir)!r} has no policy snapshots to pick a medium policy from "
                         "(runs keep one per evaluation since this version; train a new run)")
    final = evals[max(evals)]
    step = min(evals, key=lambda s: (abs(evals[s] - final / 3), s))
    return step, snaps[step], evals[step]


def make_mujoco_dataset(run_dir: str | Path, kind: str, *, transitions: int = 100_000, seed: int = 0,
                        dataset_id: str | None = None) -> str:
    """Make ``kind`` from a single-task run; returns the dataset id."""
    import minari
    import torch

    from ..policy import Policy, load_policy
    from ..training import checkpoint
    from ..training.run_dir import load_run_config

    if kind not in MUJOCO_KINDS:
        raise UsageError(f"unknown dataset kind {kind!r}; allowed: {', '.join(MUJOCO_KINDS)}")
    if transitions < 1:
        raise UsageError(f"--transitions must be >= 1, got {transitions}")
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    if cfg.run.benchmark is not None:
        raise UsageError(f"{str(run_dir)!r} is a multi-task run; MuJoCo dataset kinds need a single-task run")
    env_id = cfg.run.env
    dataset_id = dataset_id or default_id(env_id, kind)
    if dataset_id in minari.list_local_datasets():
        raise UsageError(f"dataset {dataset_id!r} exists; pick another --id or remove it first "
                         f"(minari delete {dataset_id})")
    env = env_space_env(env_id)               # stepped with, and storing, actions in its own bounds
    observation_space, action_space = env.observation_space, env.action_space
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)                   # the policies' action noise
    final = load_policy(run_dir)
    made: dict[str, Any] = {"source_run": str(run_dir), "kind": kind, "seed": seed, "env": env_id,
                            "actions": ENV_ACTIONS}

    def random_act(_obs):
        return rng.uniform(-1.0, 1.0, env.action_space.shape).astype(np.float32)

    def policy_act(policy: Policy):
        return lambda o: policy.act_unit(o, deterministic=False)

    try:
        if kind in ("medium", "medium-replay", "medium-expert"):
            step, path, ret = medium_snapshot(run_dir)
            made.update(snapshot_step=step, snapshot_eval_return=ret)
        if kind == "random":
            episodes = rollouts(env, random_act, transitions, seed)
        elif kind == "expert":
            episodes = rollouts(env, policy_act(final), transitions, seed)
        elif kind == "medium":
            episodes = rollouts(env, policy_act(Policy.load(path)), transitions, seed)
        elif kind == "medium-expert":
            episodes = (rollouts(env, policy_act(Policy.load(path)), transitions // 2, seed)
                        + rollouts(env, policy_act(final), transitions - transitions // 2, seed + 100_000))
        else:
            ckpt = checkpoint.latest(run_dir)
            replay = np.load(ckpt / "replay.npy")
            meta = checkpoint.read_meta(ckpt)
            rows = min(len(replay) if kind == "expert-replay" else step, len(replay))   # row i = step i
            made.update(replay_rows=rows, checkpoint_step=meta["step"])
            episodes = [e.with_actions(to_env_actions(e.actions, action_space))       # the agent's [-1, 1]
                        for e in replay_episodes(replay, meta["obs_dim"], meta["act_dim"], rows)]
        episodes = cap(episodes, transitions, seed)
        # reference scores: the same for every kind made from this run with this seed
        ref_rng = np.random.default_rng(seed + 10_000)
        random_ref = float(np.mean([e.rewards.sum() for e in _n_episodes(
            env, lambda _o: ref_rng.uniform(-1.0, 1.0, env.action_space.shape).astype(np.float32), seed + 10_000)]))
        torch.manual_seed(seed + 20_000)
        expert_ref = float(np.mean([e.rewards.sum() for e in _n_episodes(env, policy_act(final), seed + 20_000)]))
    finally:
        env.close()
    returns = [float(e.rewards.sum()) for e in episodes]
    made.update(episodes=len(episodes), transitions=int(sum(len(e) for e in episodes)),
                behaviour_return_mean=float(np.mean(returns)), ref_min_score=random_ref, ref_max_score=expert_ref)
    with warnings.catch_warnings():           # Minari asks for a code permalink and an e-mail
        warnings.filterwarnings("ignore", message=".*(code_permalink|author_email).*")
        data = minari.create_dataset_from_buffers(
            dataset_id, [e.buffer(i) for i, e in enumerate(episodes)], env=env_id, eval_env=env_id,
            observation_space=observation_space, action_space=action_space,
            algorithm_name=f"neuropath {cfg.pathway.pathway} SAC ({kind})", author="neuropath",
            ref_min_score=random_ref, ref_max_score=expert_ref, num_episodes_average_score=REFERENCE_EPISODES,
            description=_mujoco_description(made, cfg.pathway.pathway, action_space),
            requirements=requirements("gymnasium[mujoco]", "mujoco"), data_format="hdf5")
    data.storage.update_metadata({"neuropath": made})
    (minari.storage.get_dataset_path(dataset_id) / "neuropath.json").write_text(json.dumps(made, indent=2))
    return dataset_id


_BEHAVIOUR = {
    "expert": "the final policy of a neuropath SAC run ({pathway}), stochastic actions",
    "medium": "the policy snapshot of a neuropath SAC run ({pathway}) at step {snapshot_step} (evaluation "
              "return {snapshot_eval_return:.1f}, the closest to a third of the final policy's), stochastic actions",
    "medium-expert": "a neuropath SAC run's ({pathway}) medium snapshot (step {snapshot_step}) and final "
                     "policy, half each, stochastic actions",
    "medium-replay": "the replay buffer of a neuropath SAC run ({pathway}) up to its medium snapshot "
                     "(step {snapshot_step})",
    "expert-replay": "the replay buffer of a neuropath SAC run ({pathway}) to the end of its training",
    "random": "uniformly random actions",
}


def _mujoco_description(made: dict, pathway: str, action_space) -> str:
    """The human sentence Minari shows for a dataset; ``neuropath`` in the metadata holds the details."""
    behaviour = _BEHAVIOUR[made["kind"]].format(pathway=pathway, **made)
    seeds = ("replay-buffer episodes have no reset seed" if made["kind"].endswith("-replay")
             else "each episode keeps its reset seed, so recover_environment() replays it exactly")
    return (f"{made['env']} {made['kind']}: {made['episodes']} episodes ({made['transitions']} transitions) "
            f"of {behaviour}. Actions are in the environment's own bounds ({action_space}); {seeds}. "
            f"Reference scores: {made['ref_min_score']:.1f} (uniformly random actions) and "
            f"{made['ref_max_score']:.1f} (the run's final policy), each the mean return of "
            f"{REFERENCE_EPISODES} episodes. Made by neuropath from {made['source_run']} (seed {made['seed']}); "
            "details in the 'neuropath' metadata field.")


def _n_episodes(env, act, seed: int) -> list[Episode]:
    """``REFERENCE_EPISODES`` whole episodes (reference scores)."""
    return [rollouts(env, act, 1, seed + 1000 * k)[0] for k in range(REFERENCE_EPISODES)]


# ---- list / show ---------------------------------------------------------------------------------

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
