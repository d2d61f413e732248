"""Meta-World multi-task benchmarks (metaworld 3.x): MT10 as one vector env, one sub-env per task.

The path that works with metaworld 3.1.1 (checked with the pinned version): importing `metaworld` registers
``Meta-World/MT10`` with Gymnasium; ``gym.make_vec`` builds a synchronous vector env whose row i is
task i, each reset draws one of the task's 50 goal variations, the observation is 39 floats plus (with
``use_one_hot``) a one-hot task id, actions are in [-1, 1]^4, ``info["success"]`` is 0/1 per task, and
resets are SAME_STEP (a finished episode's last observation is in ``info["final_obs"]``).
Episodes are 500 steps (Meta-World's own length) unless ``episode_steps`` says otherwise (150 in mtrl).
"""

from __future__ import annotations

import difflib
import warnings
from functools import partial

import gymnasium as gym

from ..errors import UsageError

BENCHMARKS = {"MT10": "Meta-World/MT10"}
MT10_TASKS = ("reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
              "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3")
TASKS = {"MT10": MT10_TASKS}
MAX_EPISODE_STEPS = 500      # Meta-World raises above its own path length


def check_benchmark(name: str, episode_steps: int = MAX_EPISODE_STEPS) -> None:
    """One clear line for an unknown benchmark or an episode length Meta-World cannot run."""
    if name not in BENCHMARKS:
        close = difflib.get_close_matches(name, list(BENCHMARKS), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UsageError(f"unknown benchmark {name!r}{hint} (known: {', '.join(BENCHMARKS)})")
    if not 1 <= episode_steps <= MAX_EPISODE_STEPS:
        raise UsageError(f"--episode-steps must be in [1, {MAX_EPISODE_STEPS}] for Meta-World, got {episode_steps}")


def resolve_tasks(name: str, tasks: str | None = None) -> tuple[str, ...]:
    """The tasks a run trains on: all of the benchmark's, or the comma-separated subset ``tasks``
    (kept in the benchmark's order, so a subset's rows line up with the full benchmark's)."""
    check_benchmark(name)
    known = TASKS[name]
    if tasks is None:
        return known
    wanted = [t.strip() for t in tasks.split(",") if t.strip()]
    if not wanted:
        raise UsageError(f"--tasks needs one or more task names of {name}")
    for t in wanted:
        if t not in known:
            close = difflib.get_close_matches(t, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise UsageError(f"unknown {name} task {t!r}{hint} (known: {', '.join(known)})")
    if len(set(wanted)) != len(wanted):
        raise UsageError(f"--tasks names a task twice: {tasks}")
    return tuple(t for t in known if t in wanted)


def make_benchmark(name: str, *, seed: int, episode_steps: int = MAX_EPISODE_STEPS,
                   tasks: str | None = None) -> gym.vector.VectorEnv:
    """The benchmark as a vector env (row = task, in `resolve_tasks` order), task one-hot appended.

    A subset (``tasks``) is built task by task with Meta-World's own constructor (each task's 50 goal
    variations from its MT1 set, one-hot over the subset); we do not use its ``custom-mt-envs`` id
    because that drops seed 0 (``None if not seed``) and so is not reproducible for seed 0."""
    check_benchmark(name, episode_steps)
    chosen = resolve_tasks(name, tasks)
    try:
        import metaworld
    except ImportError:
        raise UsageError("Meta-World is not installed: pip install metaworld==3.1.1") from None
    with warnings.catch_warnings():     # "Box high's precision lowered by casting to float32": harmless
        warnings.filterwarnings("ignore", message=".*precision lowered.*")
        if chosen == TASKS[name]:
            return gym.make_vec(BENCHMARKS[name], vector_strategy="sync", seed=seed, use_one_hot=True,
                                max_episode_steps=episode_steps)
        makers = [partial(metaworld.make_mt_envs, task, seed=seed + i, env_id=i, num_tasks=len(chosen),
                          use_one_hot=True, max_episode_steps=episode_steps) for i, task in enumerate(chosen)]
        return gym.vector.SyncVectorEnv(makers, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
