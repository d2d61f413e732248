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
(no task one-hot: the multi-task learner appends it); actions are the environment's own, in [-1, 1]. Each
dataset stores how it was made (σ, seed, episodes) and reference scores (mean return and success rate of
uniform random actions and of the scripted expert over ``REFERENCE_EPISODES`` episodes) in its metadata
(a sentence in ``description``, the details in the ``neuropath`` field) and ``neuropath.json``. Episode k
of a scripted kind is goal variation ``k % 50`` of ``metaworld.MT1(task, seed=seed)``, reset with seed k:
both are stored per episode (``seed``, ``goal_variation``), so it can be replayed exactly.
"""

from __future__ import annotations

import json
import warnings

import numpy as np

from ..envs.metaworld import MT10_TASKS
from ..errors import UsageError
from .datasets import ENV_ACTIONS, Episode, cap, requirements

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
        return Episode(o, a, r, bool(terminated), k), success

    def variation(self, seed: int) -> int:
        """The goal variation episode ``seed`` ran (see `episode`)."""
        return seed % len(self.tasks)


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
                "source": "metaworld scripted policy", "actions": ENV_ACTIONS}
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
        ids.append(_write(dataset_id(task, kind), episodes, env, made, f"metaworld scripted policy ({kind})"))
    return ids


def _behaviour(made: dict) -> str:
    kind = made["kind"]
    if kind == "expert-replay":
        return f"the replay buffer of a neuropath MT-SAC run ({made['source_run']}, step {made['checkpoint_step']})"
    if kind == "expert":
        return "metaworld's scripted policy"
    noise = f"Gaussian action noise sigma = {made['noise_sigma']} (the sigma whose success rate is closest to 50%)"
    return (f"metaworld's scripted policy with {noise}" if kind == "medium"
            else f"metaworld's scripted policy, every other episode with {noise}")


def _description(made: dict) -> str:
    """The human sentence Minari shows; the ``neuropath`` metadata field holds the details."""
    replay = ("Replay-buffer episodes have no reset seed" if made["kind"] == "expert-replay" else
              f"Episode seed k is goal variation k mod 50 of metaworld.MT1('{made['task']}', seed={made['seed']}) "
              "(its goal_variation metadata), reset with seed k, so it replays exactly")
    return (f"Meta-World MT10 task {made['task']}, {made['kind']}: {made['episodes']} episodes "
            f"({made['transitions']} transitions, at most {made['episode_steps']} steps each) of {_behaviour(made)}. "
            "Observations are the 39 Meta-World features (no task one-hot); actions are the environment's own, "
            f"in [-1, 1]. {replay}. Reference scores: {made['ref_min_score']:.1f} (uniformly random actions, "
            f"success {made['random_success']:.0%}) and {made['ref_max_score']:.1f} (the scripted policy, success "
            f"{made['expert_success']:.0%}), each the mean of {REFERENCE_EPISODES} episodes. Made by neuropath; "
            "details in the 'neuropath' metadata field.")


def _write(did: str, episodes: list[Episode], env: _TaskEnv, made: dict, algorithm: str) -> str:
    """One task's dataset in Minari's format (no env spec: Meta-World's classic API is not a registered
    Gymnasium id), then ``neuropath.json``, which marks it complete."""
    import minari
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(code_permalink|author_email|eval_env|precision|env_spec).*")
        data = minari.create_dataset_from_buffers(
            did, [e.buffer(j) for j, e in enumerate(episodes)],
            observation_space=env.env.observation_space, action_space=env.env.action_space,
            algorithm_name=algorithm, author="neuropath", description=_description(made),
            requirements=requirements("metaworld", "mujoco"), data_format="hdf5")
    seeded = [(j, e.seed) for j, e in enumerate(episodes) if e.seed is not None]
    if seeded:
        data.storage.update_episode_metadata([{"goal_variation": env.variation(k)} for _, k in seeded],
                                             [j for j, _ in seeded])
    # Minari writes the reference scores only for datasets with an evaluation env spec: set them here
    data.storage.update_metadata({"ref_min_score": made["ref_min_score"], "ref_max_score": made["ref_max_score"],
                                  "num_episodes_average_score": REFERENCE_EPISODES, "neuropath": made})
    (minari.storage.get_dataset_path(did) / "neuropath.json").write_text(json.dumps(made, indent=2))
    return did
