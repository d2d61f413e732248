"""The multi-task loop (``neuropath train --benchmark MT10``): one MT-SAC, one pathway per task.

Per vector-env step every task takes one step (``--steps`` counts steps per task), its transition
goes to its own replay row, and one batched update trains all tasks. DAPD, per task (DESIGN.md,
"Multi-task"): after the random seed steps every task's mask is scored on its own recent data;
in warm-up the masks are re-scored at episode ends (all ten tasks end together at the time limit)
or every ``--mask-every`` steps, each task training its own weight copies; the pathways freeze all
at once when the mean evaluation success reaches ``--freeze-success`` or at ``--freeze-step``
(default: 60% of the run), and the copies merge into one shared weight whose overlapping entries
get the average of the tasks' gradients from then on. ``--pathway dense`` is MT-SAC (one shared
network, task one-hot), ``--heads per-task`` its multi-head variant.

Evaluation: ``--eval-episodes`` deterministic episodes per task; an episode succeeds if the
environment reports success at any step; metrics.csv holds the mean and each task's rate.
`--resume` continues from the latest checkpoint with new episodes (the environments' own RNG is not
restored, so the continued curve is not bit-identical to an uninterrupted one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...algos.mtsac import MTSAC
from ...data.task_replay import TaskReplay
from ...envs.metaworld import MAX_EPISODE_STEPS, make_benchmark, resolve_tasks
from ...errors import UsageError
from ...pathways.methods import TaskDAPD
from ...pathways.multitask import merge_task_weights, task_density
from ...pathways.schedule import SuccessFreeze
from ...pathways.task_pathway import TaskPathway
from .. import checkpoint
from ..config import Config
from ..evaluate import eval_seed
from ..guards import check_finite_losses
from ..pathway_driver import PathwayDriver
from ..run import Run

FREEZE_FRACTION = 0.6


def _safe(name: str) -> str:
    return name.replace("-", "_")


def evaluate_tasks(envs, act, episodes: int, episode_steps: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Success rate per task (an episode succeeds if the environment reports success at any step)
    and the mean return per task, over ``episodes`` episodes of every task of the vector env ``envs``;
    ``act`` maps observations [tasks, obs] to actions [tasks, act]."""
    tasks = envs.num_envs
    successes, returns = np.zeros((episodes, tasks)), np.zeros((episodes, tasks))
    for ep in range(episodes):
        obs, _ = envs.reset(seed=seed + 100 * ep)
        for _ in range(episode_steps):
            obs, reward, term, trunc, info = envs.step(act(obs))
            done = term | trunc
            step_info = info["final_info"] if done.any() else info
            successes[ep] = np.maximum(successes[ep], np.asarray(step_info["success"], float))
            returns[ep] += reward
            if done.all():
                break
    return successes.mean(0), returns.mean(0)


class MultiTaskTrainer(Run):
    """One MT-SAC run over a benchmark's tasks (see the module docstring); ``resume`` continues one."""

    score_column = "success_mean"
    kind_name = "mtsac"
    logs_episodes = False                  # ten tasks' episodes end together; no episodes.csv (as before)

    def __init__(self, cfg: Config, *, _resume_from: Path | None = None) -> None:
        cfg.validate()
        r = cfg.run
        if r.benchmark is None:
            raise UsageError("MultiTaskTrainer needs --benchmark")
        super().__init__(cfg, _resume_from)
        self.rng = np.random.default_rng(r.seed)
        self.tasks = resolve_tasks(r.benchmark, r.tasks)
        self.fields = (["step", "success_mean", "return_mean", "phase", "actor_density", "critic_density",
                        "wall_time", "cpu_seconds", "energy_j", "energy_mode"]
                       + [f"success_{_safe(t)}" for t in self.tasks])
        self.episode_steps = r.episode_steps or MAX_EPISODE_STEPS
        self.envs = make_benchmark(r.benchmark, seed=r.seed, episode_steps=self.episode_steps, tasks=r.tasks)
        self.eval_envs = make_benchmark(r.benchmark, seed=eval_seed(r.seed, 0), episode_steps=self.episode_steps,
                                        tasks=r.tasks)
        obs_dim = self.envs.single_observation_space.shape[0]
        act_dim = self.envs.single_action_space.shape[0]
        self.algo = MTSAC(obs_dim, act_dim, len(self.tasks), cfg.sac,
                          per_task_heads=r.heads == "per-task").to(self.device)
        self.optimizers = self.algo.make_optimizers()
        self.replay = TaskReplay(len(self.tasks), min(r.replay_size, r.steps), obs_dim, act_dim, self.device)
        self.pathways = build_task_pathways(cfg, self.algo, self.optimizers)
        self.driver = PathwayDriver(cfg, self.algo, self.pathways, lambda: self.logger)
        self.initialised = True
        if not self.pathways:          # MT-SAC: one shared network from the first step (heads excepted)
            for net in (self.algo.actor, self.algo.critic, self.algo.critic_target):
                merge_task_weights(net)
        self._obs: np.ndarray | None = None

    def _score_batch(self):
        p = self.cfg.pathway
        return self.replay.sample(p.score_batch, self.rng, recent=p.window)

    def density(self, name: str) -> list[float]:
        """Per task: the fraction of the network's maskable weights in its pathway."""
        return task_density(self.algo.networks[name])

    def phase(self) -> str:
        return self.driver.phase()

    def result_line(self, row: dict[str, Any]) -> str:
        """The last evaluation in one line, as ``neuropath train`` prints it at the end."""
        return (f"step {row['step']}: mean success {row['success_mean']:.2f}, return {row['return_mean']:.1f} "
                f"({self.phase()}, actor density {row['actor_density']:.3f} per task)")

    # ---- the loop ------------------------------------------------------------------------------

    def begin(self) -> None:
        self._obs, _ = self.envs.reset(seed=self.cfg.run.seed)      # every session starts new episodes

    def advance(self) -> None:
        """One step of every task, one batched update, DAPD's mask updates and freeze when due, a
        checkpoint and an evaluation when due."""
        r = self.cfg.run
        obs = self._obs
        if self.step < r.seed_steps:
            action = self.rng.uniform(-1, 1, (len(self.tasks), self.algo.act_dim)).astype(np.float32)
        else:
            action = self.algo.act(obs)
        next_obs, reward, term, trunc, info = self.envs.step(action)
        real_next = next_obs.copy()
        done = term | trunc
        if done.any():                                   # SAME_STEP autoreset: the true last obs
            final = info["final_obs"]
            for i in np.flatnonzero(done):
                real_next[i] = final[i]
        self.replay.add(obs, action, reward, real_next, term)
        self._obs = next_obs
        self.step += 1
        self.logger.tick()
        if self.step >= r.seed_steps:
            if self.driver and self.step == r.seed_steps:
                self.driver.init(self.step, self._score_batch, self.algo.losses())
            losses = self.algo.update(self.replay.sample(self.cfg.sac.batch_size, self.rng), self.optimizers)
            if self.step % r.log_every == 0:
                check_finite_losses(losses, self.step, self.run_dir)
                self.logger.scalars(self.step, {**{k: float(v) for k, v in losses.items()},
                                                "charts/SPS": self.steps_per_second()})
                self.logger.progress(self.step, self.postfix())
        before, after = self.evaluation_sides()          # of the mask update, as in the SAC loop
        if before:
            self.evaluate()
        if self.driver and self.step > r.seed_steps:
            due = self.driver.due(self.step, episode_end=bool(done.any()))
            if due:
                self.driver.update(self.step, due, recent=self._score_batch, losses=self.algo.losses)
        if self.checkpoint_due() and self.step < r.steps:
            self.save_checkpoint()
        if after:
            self.evaluate()

    def evaluation(self) -> dict[str, Any]:
        r = self.cfg.run
        per_task, returns = evaluate_tasks(self.eval_envs, lambda o: self.algo.act(o, deterministic=True),
                                           r.eval_episodes, self.episode_steps, seed=eval_seed(r.seed, self.step))
        return {"success_mean": round(float(per_task.mean()), 4), "return_mean": round(float(returns.mean()), 2),
                "phase": self.phase(),
                "actor_density": round(float(np.mean(self.density("actor"))), 6),
                "critic_density": round(float(np.mean(self.density("critic"))), 6),
                **{f"success_{_safe(t)}": round(float(s), 4) for t, s in zip(self.tasks, per_task)}}

    def after_evaluation(self, row: dict[str, Any]) -> None:
        self.logger.scalars(self.step, {"eval/success_mean": row["success_mean"],
                                        **{f"eval/success/{t}": row[f"success_{_safe(t)}"] for t in self.tasks}})
        if self.step >= self.cfg.run.seed_steps:          # the masks exist from the seed steps on
            self.driver.observe(self.step, row["success_mean"])

    # ---- checkpoints: what MT10 keeps beyond the common state -------------------------------------

    def checkpointed_replay(self) -> TaskReplay:
        return self.replay

    def meta(self) -> dict[str, Any]:
        return {"benchmark": self.cfg.run.benchmark, "tasks": list(self.tasks), "obs_dim": self.algo.obs_dim,
                "act_dim": self.algo.act_dim, "hidden": self.cfg.sac.hidden, "heads": self.cfg.run.heads}

    def load_counters(self, counters: dict[str, Any]) -> None:
        if counters.get("frozen") and self.pathways:    # checkpoints before the driver: the schedule's state
            for pw in self.pathways.values():
                pw.schedule.freeze(self.step, "frozen before this checkpoint")
        if "last_success" in counters:            # checkpoints before the shared skeleton
            self.last_eval = counters["last_success"]

    def check_checkpoint(self, path: Path) -> None:
        saved = checkpoint.read_meta(path).get("tasks")
        if saved is not None and tuple(saved) != tuple(self.tasks):
            raise UsageError(f"checkpoint {str(path)!r} has {len(saved)} tasks ({', '.join(saved)}) but this run "
                             f"has {len(self.tasks)} ({', '.join(self.tasks)})")


def build_task_pathways(cfg: Config, algo: MTSAC, optimizers: dict) -> dict[str, TaskPathway]:
    """MT10's pathways (none for ``dense``): actor and critic, each a `TaskPathway` of `TaskDAPD` on a
    `SuccessFreeze` schedule (mask updates at episode ends or every ``--mask-every`` steps; all tasks
    freeze at once at ``--freeze-success`` or ``--freeze-step``, default 60% of the run); the target
    critic follows the critic's masks and merges with it."""
    p, r = cfg.pathway, cfg.run
    if p.pathway != "dapd":
        return {}
    freeze_step = p.freeze_step if p.freeze_step is not None else int(FREEZE_FRACTION * r.steps)
    tied = {"critic": (algo.critic_target,)}
    return {name: TaskPathway(algo.networks[name],
                              TaskDAPD(cfg.keep_ratio_of(name), p.moving_average, cfg.score_of(name),
                                       seed=r.seed * 1000 + i, synflow_rounds=p.synflow_rounds),
                              SuccessFreeze(p.mask_every or None, p.freeze_success, freeze_step),
                              optimizers[name], tied=tied.get(name, ()))
            for i, name in enumerate(("actor", "critic"))}
