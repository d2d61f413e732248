"""The online training loop: act → step → store → update → maybe change masks → evaluate
→ checkpoint. `Trainer` owns a run directory; `Trainer.resume` continues one.

Checkpoints are taken at the first episode end after each ``checkpoint_every`` steps,
before the environment resets: the state to restore is then just the environment's RNG,
and a resumed run replays exactly the same transitions (tested on CPU).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from .. import __version__
from ..algos.sac import SAC
from ..data.replay import ReplayBuffer
from ..engine.energy import EnergyMeter
from ..engine.fused_sac import FusedSACUpdate
from ..engine.sparse_act import SparseActing
from ..envs.make import check_env_id, env_rng_state, make_env, set_env_rng_state
from ..errors import RunFault, UsageError
from ..pathways import density, layer_density, unmasked
from ..pathways.masks import ranges
from . import checkpoint, run_lock
from .build import build_pathways, check_reachable, needs_init_data, use_sparse_execution, uses_rlx2_extras
from .config import Config
from .evaluate import EVAL_SEED_OFFSET, run_episodes, summarise
from .guards import CheckpointClock, check_finite_losses, check_finite_weights, last_good
from .logging import RunLogger, truncate_after
from .loop_common import resume_trainer, rng_state, set_rng_state
from .policy_file import save_actor
from .run_dir import check_new_run_dir, default_run_dir, resolve_device
from .swap_probe import SwapProbe

Callback = Callable[[int, dict[str, Any]], bool]


class Trainer:
    """One SAC run with pathways. ``Trainer(cfg).train()`` starts a new run directory and
    refuses an existing non-empty one; ``Trainer.resume(run_dir).train()`` continues."""

    def __init__(self, cfg: Config, *, _resume_from: Path | None = None) -> None:
        self.cfg = cfg.validate()
        if cfg.offline.dataset is not None:
            raise UsageError("an offline run (--dataset): train it with OfflineTrainer (`neuropath train --dataset`)")
        if cfg.run.benchmark is not None:
            raise UsageError(f"{cfg.run.benchmark} is a multi-task run: train it with MultiTaskTrainer "
                             "(`neuropath train --benchmark`); resuming multi-task runs is not supported yet")
        if cfg.run.algo != "sac":
            raise UsageError(f"Trainer runs SAC; --algo {cfg.run.algo} runs with its own loop (`neuropath train`)")
        check_env_id(cfg.run.env)
        r = cfg.run
        if _resume_from is None:
            self.run_dir = Path(r.run_dir) if r.run_dir else default_run_dir(cfg)
            check_new_run_dir(self.run_dir)
        else:
            self.run_dir = _resume_from
        if r.threads:
            torch.set_num_threads(r.threads)
        self.device = resolve_device(r.device)
        self._seed_everything(r.seed)

        self.env = make_env(r.env)
        self.eval_env = make_env(r.env)
        obs_dim = self.env.observation_space.shape[0]
        act_dim = self.env.action_space.shape[0]
        self.algo = SAC(obs_dim, act_dim, cfg.sac).to(self.device)
        self.optimizers = self.algo.make_optimizers()
        check_reachable(cfg, self.algo)
        self.pathways = build_pathways(cfg, self.algo, self.optimizers)
        self.sparse = use_sparse_execution(cfg, self.algo, self.device)
        # with the sparse kernels, the whole update runs over the pathway's entries where it can
        self.fused = FusedSACUpdate(self.algo, self.optimizers) if self.sparse else None
        if self.sparse:               # and one action (training and evaluation) in a few compiled calls
            self.algo.act_executor = SparseActing(self.algo.actor)
            if not r.threads:         # the kernels are single-threaded: more torch threads only burn CPU
                torch.set_num_threads(1)
        self.rlx2 = cfg.rlx2 if uses_rlx2_extras(cfg) else None
        self.dynamic_buffer = bool(self.rlx2 and self.rlx2.dynamic_buffer)
        self.buffer = ReplayBuffer(obs_dim, act_dim, min(r.replay_size, r.steps), self.device,
                                   store_mean=self.dynamic_buffer)
        self.rng = np.random.default_rng(r.seed)
        self.probe = SwapProbe(self.algo)

        self.step = 0
        self.episodes = 0
        self.initialised = False
        self.last_eval: float | None = None
        self.next_checkpoint = r.checkpoint_every
        self.clock = CheckpointClock(cfg.run.checkpoint_minutes)
        self.obs: np.ndarray | None = None
        self.ep_return, self.ep_len = 0.0, 0
        self.logger: RunLogger | None = None
        self._last_eval_row: dict[str, Any] = {}
        self._saved_step = -1
        # CPU seconds and measured joules of earlier sessions of this run (resume adds to them)
        self._spent: dict[str, float | None] = {"cpu_seconds": 0.0, "energy_j": None}
        self._spent_before = dict(self._spent)
        self.meter: EnergyMeter | None = None

    # ---- construction helpers -------------------------------------------------------------

    @staticmethod
    def _seed_everything(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    @classmethod
    def resume(cls, run_dir: str | Path, *, steps: int | None = None, progress: bool | None = None,
               device: str | None = None, threads: int | None = None) -> "Trainer":
        """Rebuild a run from its ``config.yaml`` and load its latest checkpoint."""
        return resume_trainer(cls, run_dir, steps=steps, threads=threads, progress=progress, device=device)

    # ---- the loop -----------------------------------------------------------------------------

    @run_lock.locked
    def train(self, callback: Callback | None = None) -> dict[str, Any]:
        """Run until ``cfg.run.steps``; ``callback(step, info)`` returning False stops early.
        Either way a checkpoint is written at the stop, so `Trainer.resume` continues from
        there (a stop mid-episode resumes with a new episode). Returns the last evaluation."""
        r = self.cfg.run
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.step == 0 and not (self.run_dir / "config.yaml").exists():
            self._write_config()
        rows = truncate_after(self.run_dir, self.step)
        self.logger = RunLogger(self.run_dir, start_step=self.step, total_steps=r.steps, progress=r.progress,
                                hparams=self.cfg.to_dict())
        self._restore_last_row(rows)
        self.meter = EnergyMeter(self.device).start()
        self._spent_before = dict(self._spent)
        try:
            if not self.initialised:
                self._init_pathways()
            if self.obs is None:
                self.obs = self._reset()
            try:
                return self._loop(callback)
            except KeyboardInterrupt:
                # Ctrl-C: keep what was done; `--resume` continues (with a new episode).
                if self.initialised and self.obs is not None and self.step > 0:
                    self.save_checkpoint(reset_pending=False)
                raise
        finally:
            self.logger.close()
            self.logger = None

    def _loop(self, callback: Callback | None) -> dict[str, Any]:
        r, algo, buf = self.cfg.run, self.algo, self.buffer
        batch_size = self.cfg.sac.batch_size
        eval_first = self.cfg.pathway.boundary_order == "eval-first"
        metrics: dict[str, torch.Tensor] = {}
        t_last, s_last = time.perf_counter(), self.step
        sps = 0.0
        while self.step < r.steps:
            mean = None
            if self.step < r.seed_steps:
                action = self.rng.uniform(-1.0, 1.0, self.algo.act_dim).astype(np.float32)
            elif self.dynamic_buffer:
                action, mean = algo.act_with_mean(self.obs)
            else:
                action = algo.act(self.obs)
            next_obs, reward, terminated, truncated, _ = self.env.step(action)
            buf.add(self.obs, action, float(reward), next_obs, bool(terminated), mean)
            self.ep_return += float(reward)
            self.ep_len += 1
            self.step += 1
            self.logger.tick()
            done = bool(terminated or truncated)
            self.obs = next_obs

            if self.step >= r.seed_steps and len(buf) >= batch_size:
                metrics = self._update(self._sample(batch_size))
            # At a step where both fall, the authors evaluate (and test the freeze) before the mask
            # changes: an evaluation then never sees a pathway swapped in a moment ago (eval-first).
            evaluate = self.step % r.eval_every == 0 or self.step == r.steps   # and always at the end
            if evaluate and eval_first:
                self.evaluate()
            self._maybe_update_masks(episode_end=done)
            if self.probe.pending:
                for event in self.probe.due(self.step):
                    self.logger.pathway_event(event)
            if self.dynamic_buffer and self.step % self.rlx2.buffer_check_every == 0:
                self._adjust_buffer()

            if evaluate and not eval_first:
                self.evaluate()
            if self.step % r.log_every == 0:
                now = time.perf_counter()
                sps = (self.step - s_last) / max(now - t_last, 1e-9)
                t_last, s_last = now, self.step
                check_finite_losses(metrics, self.step, self.run_dir)
                self._log_scalars(metrics, sps)
                self.logger.progress(self.step, self._postfix())
            if done:
                self.logger.episode(self.step, self.ep_return, self.ep_len)
                self.episodes += 1
                if self.step >= self.next_checkpoint or self.step >= r.steps or self.clock.due():
                    self.save_checkpoint()
                self.obs = self._reset()
            if callback is not None and callback(self.step, {"done": done}) is False:
                break
        if self._last_eval_row.get("step") != self.step:   # stopped early: end on an evaluation
            self.evaluate()
        if self._saved_step != self.step:   # stopped mid-episode: keep its end state
            self.save_checkpoint(reset_pending=False)
        self.logger.progress(self.step, self._postfix())
        return self._last_eval_row

    def _update(self, batch) -> dict[str, torch.Tensor]:
        """One SAC update: the fused engine's where it applies, else torch's (on a whole state)."""
        if self.fused is not None:
            out = self.fused.update(batch)
            if out is not None:
                return out
            self.fused.sync()
        return self.algo.update(batch, self.optimizers)

    def sync(self) -> None:
        """Make the torch state whole (what the fused update skipped outside the pathway): before anything
        reads weights outside the pathway or the optimizers' state."""
        if self.fused is not None:
            self.fused.sync()

    def _sample(self, batch_size: int):
        """A training minibatch: n-step once RLx2's delay has passed, else 1-step."""
        x = self.rlx2
        if x is not None and x.nstep > 1 and self.algo.updates >= x.nstep_delay:
            return self.buffer.sample_nstep(batch_size, x.nstep, self.cfg.sac.gamma)
        return self.buffer.sample(batch_size)

    def _adjust_buffer(self) -> None:
        """RLx2's dynamic capacity, as its code does it: measure the policy distance D on the
        oldest transitions; above the threshold, drop the oldest fraction once."""
        x, buf = self.rlx2, self.buffer
        obs, mean = buf.oldest_rows(x.buffer_check_size)
        distance = self.algo.policy_distance(obs, mean)
        dropped = buf.drop_oldest(int(x.buffer_drop * len(buf))) \
            if distance > x.buffer_threshold and len(buf) > x.buffer_min else 0
        self.logger.pathway_event({"step": self.step, "net": "replay", "event": "buffer",
                                   "distance": round(distance, 6), "dropped": dropped, "size": len(buf)})

    def _reset(self) -> np.ndarray:
        if self.episodes == 0 and self.step == 0:
            obs, _ = self.env.reset(seed=self.cfg.run.seed)
        else:
            obs, _ = self.env.reset()
        self.ep_return, self.ep_len = 0.0, 0
        return obs

    # ---- pathways ----------------------------------------------------------------------------

    def _init_pathways(self) -> None:
        """Initial masks. DAPD and static SNIP score the untrained networks on ``init_steps``
        transitions of the untrained (stochastic) policy, as the authors do; that data is
        then dropped and does not count towards the step budget."""
        p = self.cfg.pathway
        if self.pathways:
            losses = self.algo.losses()
            sample: Callable[[], Any] | None = None
            if needs_init_data(self.cfg):
                init_buf = self._collect_init_data(max(p.init_steps, 1))
                sample = self._batches(lambda: init_buf.sample(p.score_batch))
            with unmasked(self.algo):
                for name, pw in self.pathways.items():
                    closure = (lambda n=name: losses[n](sample())) if sample else None
                    result = pw.init(closure)
                    self.logger.pathway_event(self._event("init", name, result))
                    if pw.frozen:
                        self._log_freeze(name, pw)
        self.initialised = True

    def _collect_init_data(self, n: int) -> ReplayBuffer:
        buf = ReplayBuffer(self.algo.obs_dim, self.algo.act_dim, n, self.device)
        obs, _ = self.env.reset(seed=self.cfg.run.seed + 7919)
        for _ in range(n):
            action = self.algo.act(obs)
            next_obs, reward, terminated, truncated, _ = self.env.step(action)
            buf.add(obs, action, float(reward), next_obs, bool(terminated))
            obs = next_obs if not (terminated or truncated) else self.env.reset()[0]
        return buf

    def _maybe_update_masks(self, *, episode_end: bool) -> None:
        if not self.pathways:
            return
        due = []
        for name, pw in self.pathways.items():
            was_frozen = pw.frozen
            if pw.due(self.step, episode_end=episode_end):
                due.append(name)
            elif pw.frozen and not was_frozen:
                self._log_freeze(name, pw)
        if not due:
            return
        self.sync()                       # scoring reads the dense networks, the update the optimizers
        p = self.cfg.pathway
        recent = self._batches(lambda: self.buffer.sample_recent(p.score_batch, p.window))
        probe_batch = self.buffer.recent_spread(self.probe.rows, p.window)    # one fixed batch for every network
        for name in due:
            pw = self.pathways[name]
            self.probe.before(name, probe_batch)
            if getattr(pw.method, "data", "recent") == "replay":
                # Sparse training: the network's own loss on a replay minibatch, every other
                # network as it trains (masked); the grow gradient is dense by construction.
                losses = self.algo.losses(training=True)
                result = pw.update(self.step, lambda n=name: losses[n](self.buffer.sample(p.score_batch)))
            else:
                losses = self.algo.losses(temperature=self._score_temperature())
                with unmasked(self.algo):   # DAPD: score the dense networks on recent data
                    result = pw.update(self.step, lambda n=name: losses[n](recent()))
            event = self._event("update", name, result)
            event["shift"] = round(self.probe.after(name, self.step), 6)
            if pw.entry_ages is not None:
                event["young"] = pw.entry_ages.young()
            self.logger.pathway_event(event)

    def _score_temperature(self) -> float | None:
        """α in the scoring losses: None (the learned one) or the initial one (the authors)."""
        return self.cfg.sac.init_temperature if self.cfg.pathway.score_temperature == "init" else None

    def _batches(self, draw: Callable[[], Any]) -> Callable[[], Any]:
        """The scoring batches of one mask update: a new one for each network (separate), or the first
        one drawn for all of them (shared, the authors: one batch scores actor and critic)."""
        if self.cfg.pathway.score_batches == "separate":
            return draw
        drawn: list[Any] = []

        def shared() -> Any:
            if not drawn:
                drawn.append(draw())
            return drawn[0]
        return shared

    def _log_freeze(self, name: str, pw) -> None:
        cut = self.logger.freeze(self.step, name, pw)
        if name == "critic" and len(cut) == 2:
            # SAC's actor learns through min(Q1, Q2): an action both Q networks are blind to gets no gradient
            n_obs = self.algo.obs_dim
            blind = sorted(i - n_obs for i in set.intersection(*(set(idx) for idx in cut.values())) if i >= n_obs)
            if blind:
                what, it = ("actions", "them") if len(blind) > 1 else ("action", "it")
                self.logger.warn(f"warning: both Q networks are blind to {what} {ranges(blind)}, so the actor gets "
                                 f"no gradient for {it}; in the score ablation such runs never learnt, while DAPD "
                                 "and --score synflow kept every action connected")

    def _event(self, kind: str, name: str, result) -> dict[str, Any]:
        net = self.algo.networks[name]
        return {"step": self.step, "net": name, "event": kind, "changed": result.changed,
                "density": round(result.density, 6),
                "layers": {k: round(v, 6) for k, v in layer_density(net).items()},
                "frozen": self.pathways[name].frozen}

    def phase(self) -> str:
        if not self.pathways:
            return "dense"
        schedules = [pw.schedule for pw in self.pathways.values()]
        return schedules[0].phase if all(s.phase == schedules[0].phase for s in schedules) else "mixed"

    def result_line(self, row: dict[str, Any]) -> str:
        """The last evaluation in one line, as ``neuropath train`` prints it at the end."""
        return (f"step {row['step']}: eval return {row['return_mean']:.1f} ± {row['return_std']:.1f} "
                f"({self.phase()}, actor density {row['actor_density']:.3f}, "
                f"critic density {row['critic_density']:.3f})")

    # ---- evaluation and logging -------------------------------------------------------------

    def evaluate(self) -> dict[str, Any]:
        r = self.cfg.run
        returns, lengths = run_episodes(self.eval_env, lambda o: self.algo.act(o, deterministic=True),
                                        r.eval_episodes, seed=r.seed + EVAL_SEED_OFFSET + self.step)
        row = {"step": self.step, **summarise(returns, lengths), "phase": self.phase(),
               "actor_density": round(density(self.algo.actor), 6),
               "critic_density": round(density(self.algo.critic), 6), "wall_time": round(time.time(), 3),
               **self._energy_columns()}
        self.last_eval = row["return_mean"]
        self._last_eval_row = row
        self._save_snapshot()
        self.logger.evaluation(row)
        for name, pw in self.pathways.items():
            was_frozen = pw.frozen
            pw.observe(self.step, row["return_mean"])
            if pw.frozen and not was_frozen:
                self._log_freeze(name, pw)
        return row

    def _save_snapshot(self) -> None:
        """The actor at this evaluation, as a policy file (RUN/snapshots/policy-<step>.pt): offline
        datasets need the policy of a given quality (`neuropath dataset make ... medium`)."""
        folder = self.run_dir / "snapshots"
        folder.mkdir(exist_ok=True)
        space = self.env.unwrapped.action_space
        path = folder / f"policy-{self.step:09d}.pt"
        try:
            save_actor(self.algo.actor, space.low, space.high, self.cfg.run.env, path)
        except (OSError, RuntimeError) as exc:
            if checkpoint.is_disk_full(exc):
                path.with_name(f".tmp-{path.name}").unlink(missing_ok=True)
                raise RunFault(f"the disk is full: {path} could not be written; {last_good(self.run_dir)}") from None
            raise

    def _update_spent(self) -> None:
        if self.meter is None:
            return
        before = self._spent_before
        self._spent["cpu_seconds"] = before["cpu_seconds"] + self.meter.cpu_seconds()
        joules = self.meter.joules()
        if joules is not None:
            self._spent["energy_j"] = (before["energy_j"] or 0.0) + joules

    def _energy_columns(self) -> dict[str, Any]:
        """Cumulative CPU seconds and (where measured) joules of the run, across resumes."""
        if self.meter is None:
            return {}
        self._update_spent()
        return {"cpu_seconds": round(self._spent["cpu_seconds"], 2),
                "energy_j": "" if self._spent["energy_j"] is None else round(self._spent["energy_j"], 1),
                "energy_mode": self.meter.mode}

    def _log_scalars(self, metrics: dict[str, torch.Tensor], sps: float) -> None:
        values = {k: float(v) for k, v in metrics.items()}
        values["charts/SPS"] = sps
        values["pathway/actor_density"] = density(self.algo.actor)
        values["pathway/critic_density"] = density(self.algo.critic)
        self.logger.scalars(self.step, values)
        self.logger.flush()

    def _restore_last_row(self, rows: list[dict[str, str]]) -> None:
        """Put back the checkpoint's last evaluation row where ``metrics.csv`` (its kept ``rows``) lost it (a crash cut it while it was
        written, and `read_csv` leaves a cut row out): the checkpoint holds the row, so nothing finished is lost."""
        row = self._last_eval_row
        if not row or not self.step:
            return
        if not rows or int(rows[-1]["step"]) < int(row["step"]):
            self.logger.evaluation(row)
            self.logger.warn(f"neuropath: metrics.csv had lost its row of step {row['step']} (cut mid-write); "
                             "restored from the checkpoint")

    def _postfix(self) -> dict[str, str]:
        ret = "-" if self.last_eval is None else f"{self.last_eval:.0f}"
        return {"eval": ret, "phase": self.phase(),
                "actor_sp": f"{1 - density(self.algo.actor):.1%}",
                "critic_sp": f"{1 - density(self.algo.critic):.1%}"}

    def _write_config(self) -> None:
        data = self.cfg.to_dict()
        data["run"]["run_dir"] = str(self.run_dir)
        text = yaml.safe_dump({"neuropath": __version__, **data}, sort_keys=False)
        checkpoint.write_text_atomic(self.run_dir / "config.yaml", text)

    # ---- checkpoints -------------------------------------------------------------------------

    def state_dict(self, *, reset_pending: bool = True) -> dict[str, Any]:
        self.sync()
        self._update_spent()
        return {
            "algo": self.algo.state_dict(), "algo_updates": self.algo.updates,
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "pathways": {k: p.state_dict() for k, p in self.pathways.items()},
            "counters": {"step": self.step, "episodes": self.episodes, "initialised": self.initialised,
                         "last_eval": self.last_eval, "last_eval_row": self._last_eval_row,
                         "next_checkpoint": self.next_checkpoint, "reset_pending": reset_pending,
                         "ep_return": self.ep_return, "ep_len": self.ep_len, "spent": dict(self._spent)},
            "rng": {**rng_state(self.rng), "env": env_rng_state(self.env)},
            "replay": self.buffer.state_dict(),
            "swap_probe": self.probe.state_dict(),
        }

    def save_checkpoint(self, *, reset_pending: bool = True) -> Path:
        r = self.cfg.run
        self.sync()
        check_finite_weights(self.algo, self.step, self.run_dir)
        if self.logger is not None:        # the rows up to this step are on disk before the checkpoint is
            self.logger.flush()
        self.clock.reset()
        while self.next_checkpoint <= self.step:
            self.next_checkpoint += r.checkpoint_every
        meta = {"neuropath": __version__, "env": r.env, "pathway": self.cfg.pathway.pathway,
                "obs_dim": self.algo.obs_dim, "act_dim": self.algo.act_dim, "hidden": self.cfg.sac.hidden}
        path = checkpoint.save(self.run_dir, self.step, self.state_dict(reset_pending=reset_pending),
                               replay=self.buffer, meta=meta, keep=r.keep_checkpoints)
        self._saved_step = self.step
        return path

    def load_checkpoint(self, path: Path) -> None:
        state = checkpoint.load_state(path, map_location=self.device)
        if self.fused is not None:
            self.fused.forget()           # its views and skipped work belong to the state being replaced
        checkpoint.restore(path, state, {"algo": self.algo, "optimizers": self.optimizers, "pathways": self.pathways},
                           also=lambda: self.buffer.load(path / "replay.npy", state["replay"]))
        self.algo.updates = state["algo_updates"]
        c = state["counters"]
        self.step, self.episodes, self.initialised = c["step"], c["episodes"], c["initialised"]
        self.last_eval, self._last_eval_row = c["last_eval"], c["last_eval_row"]
        self.next_checkpoint = c["next_checkpoint"]
        self._spent = dict(c.get("spent", self._spent))
        self.probe.load_state_dict(state.get("swap_probe", {}))
        self._saved_step = self.step
        rng = state["rng"]
        set_rng_state(rng, self.rng)
        self.env.reset(seed=self.cfg.run.seed)      # build the env, then restore its RNG
        set_env_rng_state(self.env, rng["env"])
        # At an episode end the next reset replays exactly; a run that stopped at its step
        # budget mid-episode and is extended starts a new episode there.
        self.obs = None
        self.ep_return, self.ep_len = 0.0, 0
