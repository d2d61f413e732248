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

import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .. import __version__
from ..algos.mtsac import MTSAC
from ..data.task_replay import TaskReplay
from ..engine.energy import EnergyMeter
from ..envs.metaworld import MAX_EPISODE_STEPS, make_benchmark, resolve_tasks
from ..errors import UsageError
from ..pathways.methods import TaskDAPD
from ..pathways.multitask import merge_task_weights, task_density, task_layers
from ..pathways.optim import reset_optimizer_state
from . import checkpoint, run_lock
from .checkpoint import write_text_atomic
from .config import Config
from .guards import CheckpointClock, check_finite_losses, check_finite_weights
from .loop_common import resume_trainer, rng_state, set_rng_state
from .run_dir import resolve_device, start_run

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


class MultiTaskTrainer:
    def __init__(self, cfg: Config, *, _resume_from: Path | None = None) -> None:
        self.cfg = cfg.validate()
        r = cfg.run
        if r.benchmark is None:
            raise UsageError("MultiTaskTrainer needs --benchmark")
        self.run_dir = start_run(cfg, _resume_from)
        self.rng = np.random.default_rng(r.seed)
        self.device = resolve_device(r.device)
        self.tasks = resolve_tasks(r.benchmark, r.tasks)
        self.episode_steps = r.episode_steps or MAX_EPISODE_STEPS
        self.envs = make_benchmark(r.benchmark, seed=r.seed, episode_steps=self.episode_steps, tasks=r.tasks)
        self.eval_envs = make_benchmark(r.benchmark, seed=r.seed + 10_000, episode_steps=self.episode_steps,
                                        tasks=r.tasks)
        obs_dim = self.envs.single_observation_space.shape[0]
        act_dim = self.envs.single_action_space.shape[0]
        self.algo = MTSAC(obs_dim, act_dim, len(self.tasks), cfg.sac,
                          per_task_heads=r.heads == "per-task").to(self.device)
        self.optimizers = self.algo.make_optimizers()
        self.replay = TaskReplay(len(self.tasks), min(r.replay_size, r.steps), obs_dim, act_dim, self.device)
        p = cfg.pathway
        self.dapd = ({n: TaskDAPD(cfg.keep_ratio_of(n), p.moving_average, cfg.score_of(n), seed=r.seed * 1000 + i,
                                  synflow_rounds=p.synflow_rounds) for i, n in enumerate(("actor", "critic"))}
                     if p.pathway == "dapd" else {})
        self.freeze_step = p.freeze_step if p.freeze_step is not None else int(FREEZE_FRACTION * r.steps)
        self.frozen = not self.dapd
        if not self.dapd:              # MT-SAC: one shared network from the first step (heads excepted)
            for net in (self.algo.actor, self.algo.critic, self.algo.critic_target):
                merge_task_weights(net)
        self.step = 0
        self.checkpoint_clock = CheckpointClock(cfg.run.checkpoint_minutes)
        self.last_success: float | None = None
        self.cpu_before = 0.0

    @classmethod
    def resume(cls, run_dir: str | Path, *, steps: int | None = None, threads: int | None = None,
               progress: bool | None = None, device: str | None = None) -> "MultiTaskTrainer":
        """Continue a run from its latest checkpoint (new episodes start there; optionally a
        larger ``steps`` budget)."""
        return resume_trainer(cls, run_dir, steps=steps, threads=threads, progress=progress, device=device)

    # ---- pathways ------------------------------------------------------------------------------

    def _score_batch(self):
        p = self.cfg.pathway
        return self.replay.sample(p.score_batch, self.rng, recent=p.window)

    def _update_masks(self, event: str) -> None:
        losses = self.algo.losses()
        for name, method in self.dapd.items():
            net = self.algo.networks[name]
            before = {n: m.mask.clone() for n, m in task_layers(net).items()}
            batch = self._score_batch()
            changed = method.update(net, lambda: losses[name](batch))
            for n, m in task_layers(net).items():                 # moments of a weight's old life go
                reset_optimizer_state(self.optimizers[name], m.weight, before[n] != m.mask)
            self._event({"step": self.step, "net": name, "event": event, "changed": changed,
                         "density": [round(d, 6) for d in self.density(name)]})
        for (_, src), (_, dst) in zip(task_layers(self.algo.critic).items(), task_layers(self.algo.critic_target).items()):
            for t in range(len(self.tasks)):
                dst.set_mask(src.mask[t], t)

    def _freeze(self, reason: str) -> None:
        merge_task_weights(self.algo.actor, self.optimizers["actor"])
        merge_task_weights(self.algo.critic, self.optimizers["critic"])
        merge_task_weights(self.algo.critic_target)
        self.frozen = True
        for name in self.dapd:
            self._event({"step": self.step, "net": name, "event": "freeze", "reason": reason})

    def density(self, name: str) -> list[float]:
        """Per task: the fraction of the network's maskable weights in its pathway."""
        return task_density(self.algo.networks[name])

    def phase(self) -> str:
        return "dense" if not self.dapd else ("frozen" if self.frozen else "warm-up")

    def result_line(self, row: dict[str, Any]) -> str:
        """The last evaluation in one line, as ``neuropath train`` prints it at the end."""
        return (f"step {row['step']}: mean success {row['success_mean']:.2f}, return {row['return_mean']:.1f} "
                f"({self.phase()}, actor density {row['actor_density']:.3f} per task)")

    # ---- the loop ------------------------------------------------------------------------------

    @run_lock.locked
    def train(self) -> dict[str, Any]:
        r, p = self.cfg.run, self.cfg.pathway
        self.run_dir.mkdir(parents=True, exist_ok=True)
        data = self.cfg.to_dict()
        data["run"]["run_dir"] = str(self.run_dir)
        write_text_atomic(self.run_dir / "config.yaml", yaml.safe_dump({"neuropath": __version__, **data}, sort_keys=False))
        self._fields = (["step", "success_mean", "return_mean", "phase", "actor_density", "critic_density",
                         "wall_time", "cpu_seconds"] + [f"success_{_safe(t)}" for t in self.tasks])
        evaluated_at = self._truncate_logs()
        fresh = not (self.run_dir / "metrics.csv").is_file()
        self._metrics = open(self.run_dir / "metrics.csv", "a")
        if fresh:
            self._metrics.write(",".join(self._fields) + "\n")
        self._pathway = open(self.run_dir / "pathway.jsonl", "a")
        from torch.utils.tensorboard import SummaryWriter  # slow import: only when a run starts
        self.tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=self.step or None)
        self.meter = EnergyMeter(self.device).start()
        clock = (time.perf_counter(), self.step)
        bar = None
        if r.progress:
            from tqdm import tqdm
            bar = tqdm(total=r.steps, desc=f"{r.benchmark} {p.pathway}", unit="step")
        row: dict[str, Any] = {}
        try:
            obs, _ = self.envs.reset(seed=r.seed)
            while self.step < r.steps:
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
                obs = next_obs
                self.step += 1
                if self.step >= r.seed_steps:
                    if self.dapd and self.step == r.seed_steps:
                        self._update_masks("init")
                    losses = self.algo.update(self.replay.sample(self.cfg.sac.batch_size, self.rng), self.optimizers)
                    if self.step % r.log_every == 0:
                        now = time.perf_counter()
                        check_finite_losses(losses, self.step, self.run_dir)
                        for k, v in losses.items():
                            self.tb.add_scalar(k, float(v), self.step)
                        self.tb.add_scalar("charts/SPS", (self.step - clock[1]) / max(now - clock[0], 1e-9), self.step)
                        clock = (now, self.step)
                    if self.dapd and not self.frozen and self.step > r.seed_steps:
                        due = (self.step % p.mask_every == 0) if p.mask_every else bool(done.any())
                        if due:
                            self._update_masks("update")
                        if self.step >= self.freeze_step:
                            self._freeze(f"reached freeze step {self.freeze_step}")
                if (self.step % r.checkpoint_every == 0 or self.checkpoint_clock.due()) and self.step < r.steps:
                    self.save()
                if self.step % r.eval_every == 0 or self.step == r.steps:
                    row = self.evaluate()
                    evaluated_at = self.step
                    if self.dapd and not self.frozen and row["success_mean"] >= p.freeze_success \
                            and self.step >= r.seed_steps:
                        self._freeze(f"mean success {row['success_mean']:.2f} >= {p.freeze_success}")
                if bar is not None:
                    bar.update(1)
                    if self.step % 100 == 0:
                        bar.set_postfix(success="-" if self.last_success is None else f"{self.last_success:.2f}",
                                        phase=self.phase())
            if evaluated_at != self.step:       # interrupted in its final evaluation: the budget's row
                row = self.evaluate()
            self.save()
        except KeyboardInterrupt:          # Ctrl-C / SIGTERM: keep what was done; --resume continues
            if self.step > 0:
                self.save()
            raise
        finally:
            if bar is not None:
                bar.close()
            self._metrics.close()
            self._pathway.close()
            self.tb.close()
        return row

    def evaluate(self) -> dict[str, Any]:
        r = self.cfg.run
        per_task, returns = evaluate_tasks(self.eval_envs, lambda o: self.algo.act(o, deterministic=True),
                                           r.eval_episodes, self.episode_steps, seed=r.seed + 10_000 + self.step)
        row = {"step": self.step, "success_mean": round(float(per_task.mean()), 4),
               "return_mean": round(float(returns.mean()), 2), "phase": self.phase(),
               "actor_density": round(float(np.mean(self.density("actor"))), 6),
               "critic_density": round(float(np.mean(self.density("critic"))), 6),
               "wall_time": round(time.time(), 3),
               "cpu_seconds": round(self.cpu_before + self.meter.cpu_seconds(), 2),
               **{f"success_{_safe(t)}": round(float(s), 4) for t, s in zip(self.tasks, per_task)}}
        self.last_success = row["success_mean"]
        self.tb.add_scalar("eval/success_mean", row["success_mean"], self.step)
        self.tb.add_scalar("eval/return", row["return_mean"], self.step)
        for t, v in zip(self.tasks, per_task):
            self.tb.add_scalar(f"eval/success/{t}", float(v), self.step)
        self._metrics.write(",".join(str(row[k]) for k in self._fields) + "\n")
        self._metrics.flush()
        return row

    def _event(self, event: dict) -> None:
        import json
        self._pathway.write(json.dumps(event) + "\n")
        self._pathway.flush()

    def save(self) -> Path:
        """A checkpoint: networks with masks, optimizers, DAPD windows, replay, counters, RNGs (never of
        non-finite weights)."""
        check_finite_weights(self.algo, self.step, self.run_dir)
        self.checkpoint_clock.reset()
        meta = {"neuropath": __version__, "benchmark": self.cfg.run.benchmark, "tasks": list(self.tasks),
                "pathway": self.cfg.pathway.pathway, "obs_dim": self.algo.obs_dim, "act_dim": self.algo.act_dim,
                "hidden": self.cfg.sac.hidden, "heads": self.cfg.run.heads}
        state = {"algo": self.algo.state_dict(), "algo_updates": self.algo.updates,
                 "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                 "pathways": {k: m.state_dict() for k, m in self.dapd.items()},
                 "counters": {"step": self.step, "frozen": self.frozen, "last_success": self.last_success,
                              "cpu_seconds": self.cpu_before + (self.meter.cpu_seconds() if hasattr(self, "meter") else 0.0)},
                 "rng": rng_state(self.rng)}
        return checkpoint.save(self.run_dir, self.step, state, replay=self.replay, meta=meta,
                               keep=self.cfg.run.keep_checkpoints)

    def load_checkpoint(self, path: Path) -> None:
        state = checkpoint.load_state(path, map_location=self.device)
        saved = checkpoint.read_meta(path).get("tasks")
        if saved is not None and tuple(saved) != tuple(self.tasks):
            raise UsageError(f"checkpoint {str(path)!r} has {len(saved)} tasks ({', '.join(saved)}) but this run "
                             f"has {len(self.tasks)} ({', '.join(self.tasks)})")
        checkpoint.restore(path, state, {"algo": self.algo, "optimizers": self.optimizers, "pathways": self.dapd},
                           also=lambda: self.replay.load(path / "replay.npy"))
        self.algo.updates = state["algo_updates"]
        c = state["counters"]
        self.step, self.frozen, self.last_success = c["step"], c["frozen"], c["last_success"]
        self.cpu_before = c["cpu_seconds"]
        set_rng_state(state["rng"], self.rng)

    def _truncate_logs(self) -> int | None:
        """Drop log lines written after the checkpoint we resume from (a run killed later); returns the step
        of the last evaluation row kept (None: none yet)."""
        import json
        metrics, events = self.run_dir / "metrics.csv", self.run_dir / "pathway.jsonl"
        last = None
        if metrics.is_file():
            lines = metrics.read_text().splitlines()
            kept = lines[:1] + [x for x in lines[1:] if int(x.split(",")[0]) <= self.step]
            write_text_atomic(metrics, "\n".join(kept) + "\n")
            last = int(kept[-1].split(",")[0]) if len(kept) > 1 else None
        if events.is_file():
            kept = [x for x in events.read_text().splitlines() if x.strip() and json.loads(x)["step"] <= self.step]
            write_text_atomic(events, "".join(x + "\n" for x in kept))
        return last
