"""Meta-World MT10 offline datasets, one Minari dataset per task, from the scripted policies.

metaworld ships a scripted expert for every task (``metaworld.policies.ENV_POLICY_MAP``). Kinds:

- ``expert``: the scripted policy;
- ``medium``: the scripted policy with Gaussian action noise N(0, σ²) (clipped to [-1, 1]); σ is
  chosen per task, when the dataset is made, as the value of `NOISE_GRID` whose success rate over
  `CALIBRATION_EPISODES` episodes is closest to 50% — one σ cannot serve all tasks (measured: at σ = 1
  reach, door-open and the window tasks still succeed 8/8, push 1/8, pick-place 0/8);
- ``medium-expert``: half and half.

Episodes use the classic benchmark API (a task's env with one of its 50 goal variations per episode, from
Meta-World's MT1 set for the task — datasets made before 2026-11-26 drew them from the MT10 set;
``max_path_length`` = ``episode_steps``, 150 as in mtrl). Observations are the 39 Meta-World features
(no task one-hot: the multi-task learner appends it). Each dataset stores how it was made (σ, seed,
episodes) and reference scores (mean return and success rate of uniform random actions and of the
scripted expert) in its metadata and ``neuropath.json``.
"""

from __future__ import annotations

import json
import warnings

import numpy as np

from ..envs.metaworld import MT10_TASKS, resolve_tasks
from ..errors import UsageError
from .datasets import Episode, cap

MT10_KINDS = ("expert", "medium", "medium-expert")
MT10_TRAIN_KINDS = (*MT10_KINDS, "expert-replay")      # expert-replay comes from an online run
NOISE_GRID = (0.3, 0.6, 1.0, 1.5, 2.0, 3.0)
CALIBRATION_EPISODES = 10
REFERENCE_EPISODES = 10


def dataset_id(task: str, kind: str) -> str:
    return f"neuropath/mt10/{task.removesuffix('-v3')}-{kind}-v0"


class _TaskEnv:
    """One MT10 task through the classic API, cycling through its goal variations."""

    def __init__(self, task: str, seed: int, episode_steps: int) -> None:
        import metaworld
        from metaworld.policies import ENV_POLICY_MAP
        with warnings.catch_warnings():       # MT1: the task's own 50 goal variations, without building
            warnings.filterwarnings("ignore", message=".*precision lowered.*")     # the other nine envs
            bench = metaworld.MT1(task, seed=seed)
            self.env = bench.train_classes[task]()
        self.env.max_path_length = episode_steps
        self.tasks = [t for t in bench.train_tasks if t.env_name == task]
        self.policy = ENV_POLICY_MAP[task]()
        self.steps = episode_steps

    def episode(self, k: int, act) -> tuple[Episode, bool]:
        self.env.set_task(self.tasks[k % len(self.tasks)])
        obs, _ = self.env.reset(seed=k)
        o, a, r, success = [obs], [], [], False
        for _ in range(self.steps):
            action = np.clip(act(obs), -1.0, 1.0).astype(np.float32)
            obs, reward, terminated, truncated, info = self.env.step(action)
            o.append(obs)
            a.append(action)
            r.append(reward)
            success = success or bool(info.get("success", 0.0) > 0)
            if terminated or truncated:
                break
        return Episode(o, a, r, bool(terminated)), success


def _noisy(policy, sigma: float, rng: np.random.Generator):
    return lambda obs: policy.get_action(obs) + sigma * rng.standard_normal(4)


def _success_rate(env: _TaskEnv, act, episodes: int, start: int) -> tuple[float, float]:
    results = [env.episode(start + k, act) for k in range(episodes)]
    return float(np.mean([s for _, s in results])), float(np.mean([e.rewards.sum() for e, _ in results]))


def make_mt10_datasets(kind: str, *, transitions: int = 10_000, seed: int = 0, episode_steps: int = 150,
                       tasks: tuple[str, ...] = MT10_TASKS) -> list[str]:
    """Make ``kind`` for every task (``transitions`` per task); returns the dataset ids."""
    import minari

    if kind not in MT10_KINDS:
        raise UsageError(f"unknown MT10 dataset kind {kind!r}; allowed: {', '.join(MT10_KINDS)}")
    if transitions < 1:
        raise UsageError(f"--transitions must be >= 1, got {transitions}")
    existing = [dataset_id(t, kind) for t in tasks if dataset_id(t, kind) in minari.list_local_datasets()]
    if existing:
        raise UsageError(f"dataset {existing[0]!r} exists; remove it first (minari delete {existing[0]})")
    ids = []
    for task in tasks:
        rng = np.random.default_rng(seed + 1000 * MT10_TASKS.index(task))     # the same noise for a subset
        env = _TaskEnv(task, seed, episode_steps)
        made = {"benchmark": "MT10", "task": task, "kind": kind, "seed": seed, "episode_steps": episode_steps,
                "source": "metaworld scripted policy"}
        expert = env.policy.get_action
        sigma = None
        if kind in ("medium", "medium-expert"):
            rates = {s: _success_rate(env, _noisy(env.policy, s, rng), CALIBRATION_EPISODES, 50_000)[0]
                     for s in NOISE_GRID}
            sigma = min(NOISE_GRID, key=lambda s: (abs(rates[s] - 0.5), s))
            made.update(noise_sigma=sigma, calibration={str(s): r for s, r in rates.items()})
        episodes, successes, k = [], [], 0
        while sum(len(e) for e in episodes) < transitions:
            act = (_noisy(env.policy, sigma, rng) if kind == "medium" or (kind == "medium-expert" and k % 2)
                   else expert)
            ep, ok = env.episode(seed * 100_000 + k, act)
            episodes.append(ep)
            successes.append(ok)
            k += 1
        episodes = cap(episodes, transitions, seed)
        random_rng = np.random.default_rng(seed + 7)
        random_success, random_return = _success_rate(env, lambda _o: random_rng.uniform(-1, 1, 4),
                                                      REFERENCE_EPISODES, 90_000)
        expert_success, expert_return = _success_rate(env, expert, REFERENCE_EPISODES, 95_000)
        made.update(episodes=len(episodes), transitions=int(sum(len(e) for e in episodes)),
                    behaviour_success=float(np.mean(successes)),
                    behaviour_return_mean=float(np.mean([e.rewards.sum() for e in episodes])),
                    ref_min_score=random_return, ref_max_score=expert_return,
                    random_success=random_success, expert_success=expert_success)
        did = dataset_id(task, kind)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(code_permalink|author_email|eval_env|precision|env_spec).*")
            minari.create_dataset_from_buffers(
                did, [e.buffer(j) for j, e in enumerate(episodes)],
                observation_space=env.env.observation_space, action_space=env.env.action_space,
                algorithm_name=f"metaworld scripted policy ({kind})", author="neuropath",
                ref_min_score=random_return, ref_max_score=expert_return,
                description=json.dumps(made), data_format="hdf5")
        (minari.storage.get_dataset_path(did) / "neuropath.json").write_text(json.dumps(made, indent=2))
        ids.append(did)
    return ids


def make_mt10_replay_datasets(run_dir, *, transitions: int = 10_000, seed: int = 0,
                              tasks: tuple[str, ...] | None = None) -> list[str]:
    """``expert-replay`` per task: the replay buffer of an online MT10 run (its latest checkpoint),
    observations without the task one-hot, episodes split where the stored next observation is not the
    next row's observation; reference scores as for the scripted kinds."""
    from pathlib import Path

    import minari

    from ..training import checkpoint
    from ..training.online import load_run_config
    from .datasets import replay_episodes

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
        random_rng = np.random.default_rng(seed + 7)
        random_success, random_return = _success_rate(env, lambda _o: random_rng.uniform(-1, 1, 4),
                                                      REFERENCE_EPISODES, 90_000)
        expert_success, expert_return = _success_rate(env, env.policy.get_action, REFERENCE_EPISODES, 95_000)
        made = {"benchmark": "MT10", "task": task, "kind": "expert-replay", "seed": seed,
                "episode_steps": cfg.run.episode_steps or 500,
                "source_run": str(run_dir), "checkpoint_step": int(checkpoint.read_meta(ckpt)["step"]),
                "episodes": len(episodes), "transitions": int(sum(len(e) for e in episodes)),
                "behaviour_return_mean": float(np.mean([e.rewards.sum() for e in episodes])),
                "ref_min_score": random_return, "ref_max_score": expert_return,
                "random_success": random_success, "expert_success": expert_success}
        did = dataset_id(task, "expert-replay")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(code_permalink|author_email|eval_env|precision|env_spec).*")
            minari.create_dataset_from_buffers(
                did, [e.buffer(j) for j, e in enumerate(episodes)],
                observation_space=env.env.observation_space, action_space=env.env.action_space,
                algorithm_name="neuropath MT-SAC replay (expert-replay)", author="neuropath",
                ref_min_score=random_return, ref_max_score=expert_return,
                description=json.dumps(made), data_format="hdf5")
        (minari.storage.get_dataset_path(did) / "neuropath.json").write_text(json.dumps(made, indent=2))
        ids.append(did)
    return ids
