"""Offline datasets made from trained runs (D4RL's recipe, on our own runs): MuJoCo datasets of every kind
from a `neuropath train` run directory, and MT10 ``expert-replay`` datasets from an online MT10 run's replay
buffer. What a dataset holds, its actions and its metadata are described in `neuropath.data.datasets` and
`neuropath.data.metaworld_datasets`, which read them and make the scripted MT10 kinds.

These makers live in ``experiments/`` because they load trained runs (checkpoints, policies); ``data/``
below ``training/`` only reads datasets, so a loop can read one without importing the code that trains.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..data.datasets import (ENV_ACTIONS, MUJOCO_KINDS, REFERENCE_EPISODES, Episode, cap, default_id,
                             env_space_env, replay_episodes, requirements, rollouts, to_env_actions)
from ..data.metaworld_datasets import _success_rate, _TaskEnv, _write, dataset_id
from ..envs.metaworld import resolve_tasks
from ..errors import UsageError


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


def make_mt10_replay_datasets(run_dir, *, transitions: int = 10_000, seed: int = 0,
                              tasks: tuple[str, ...] | None = None) -> list[str]:
    """``expert-replay`` per task: the replay buffer of an online MT10 run (its latest checkpoint),
    observations without the task one-hot, episodes split where the stored next observation is not the
    next row's observation; reference scores as for the scripted kinds."""
    import minari

    from ..training import checkpoint
    from ..training.run_dir import load_run_config

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    if cfg.run.benchmark != "MT10":
        raise UsageError(f"{str(run_dir)!r} is not an MT10 run; expert-replay for MT10 needs one")
    if transitions < 1:
        raise UsageError(f"--transitions must be >= 1, got {transitions}")
    run_tasks = resolve_tasks(cfg.run.benchmark, cfg.run.tasks)      # the replay's rows, in order
    tasks = run_tasks if tasks is None else tasks
    missing = [t for t in tasks if t not in run_tasks]
    if missing:
        raise UsageError(f"run {str(run_dir)!r} did not train on {', '.join(missing)}")
    existing = [dataset_id(t, "expert-replay") for t in tasks
                if dataset_id(t, "expert-replay") in minari.list_local_datasets()]
    if existing:
        raise UsageError(f"dataset {existing[0]!r} exists; remove it first (minari delete {existing[0]})")
    ckpt = checkpoint.latest(run_dir)
    with np.load(ckpt / "replay.npy") as data:
        replay = {k: data[k] for k in ("obs", "action", "reward", "next_obs", "not_done")}
    ids = []
    for task in tasks:
        i = run_tasks.index(task)
        rows = np.concatenate([replay["obs"][i, :, :39], replay["action"][i], replay["reward"][i],
                               replay["next_obs"][i, :, :39], replay["not_done"][i]], axis=1)
        episodes = cap(replay_episodes(rows, 39, replay["action"].shape[2], len(rows)), transitions, seed)
        env = _TaskEnv(task, seed, cfg.run.episode_steps)
        episodes = [e.with_actions(to_env_actions(e.actions, env.env.action_space)) for e in episodes]  # no-op: [-1, 1]
        random_rng = np.random.default_rng(seed + 7)
        random_success, random_return = _success_rate(env, lambda _o: random_rng.uniform(-1, 1, 4),
                                                      REFERENCE_EPISODES, 90_000)
        expert_success, expert_return = _success_rate(env, env.policy.get_action, REFERENCE_EPISODES, 95_000)
        made = {"benchmark": "MT10", "task": task, "kind": "expert-replay", "seed": seed,
                "episode_steps": cfg.run.episode_steps or 500,
                "source_run": str(run_dir), "checkpoint_step": int(checkpoint.read_meta(ckpt)["step"]),
                "actions": ENV_ACTIONS,
                "episodes": len(episodes), "transitions": int(sum(len(e) for e in episodes)),
                "behaviour_return_mean": float(np.mean([e.rewards.sum() for e in episodes])),
                "ref_min_score": random_return, "ref_max_score": expert_return,
                "random_success": random_success, "expert_success": expert_success}
        ids.append(_write(dataset_id(task, "expert-replay"), episodes, env, made,
                          "neuropath MT-SAC replay (expert-replay)"))
    return ids
