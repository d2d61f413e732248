"""Meta-World multi-task benchmarks (metaworld 3.x): MT10 as one vector env, one sub-env per task.

The path that works with metaworld 3.1.1 (PLATFORM.md §2.2): importing `metaworld` registers
``Meta-World/MT10`` with Gymnasium; ``gym.make_vec`` builds a synchronous vector env whose row i is
task i, each reset draws one of the task's 50 goal variations, the observation is 39 floats plus (with
``use_one_hot``) a one-hot task id, actions are in [-1, 1]^4, ``info["success"]`` is 0/1 per task, and
resets are SAME_STEP (a finished episode's last observation is in ``info["final_obs"]``).
Episodes are 500 steps (Meta-World's own length) unless ``episode_steps`` says otherwise (150 in mtrl).
"""

from __future__ import annotations

import difflib
import warnings

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


def make_benchmark(name: str, *, seed: int, episode_steps: int = MAX_EPISODE_STEPS) -> gym.vector.VectorEnv:
    """The benchmark as a vector env (row = task, in `TASKS[name]` order), task one-hot appended."""
    check_benchmark(name, episode_steps)
    try:
        import metaworld  # noqa: F401 - registers the Meta-World ids with Gymnasium
    except ImportError:
        raise UsageError("Meta-World is not installed: pip install metaworld==3.1.1") from None
    with warnings.catch_warnings():     # "Box high's precision lowered by casting to float32": harmless
        warnings.filterwarnings("ignore", message=".*precision lowered.*")
        envs = gym.make_vec(BENCHMARKS[name], vector_strategy="sync", seed=seed, use_one_hot=True,
                            max_episode_steps=episode_steps)
    return envs


def task_names(name: str) -> tuple[str, ...]:
    check_benchmark(name)
    return TASKS[name]
